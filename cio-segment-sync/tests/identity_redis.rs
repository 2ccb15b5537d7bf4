//! The default identity rules on top of the Redis identity store (features `redis` + `testing`):
//! every `StoreResolver` rule, each against its own throwaway `redis-server`.

use cio_segment_sync::redis::RedisIdentityStore;
use cio_segment_sync::testing::Guarded;
use cio_segment_sync::testing::redis_server::TestRedis;

async fn identity() -> Guarded<RedisIdentityStore, TestRedis> {
    let guard = TestRedis::start().await;
    Guarded {
        store: RedisIdentityStore::new(guard.connect().await),
        guard,
    }
}

cio_segment_sync::store_resolver_conformance!(redis_identity_resolver, identity());
