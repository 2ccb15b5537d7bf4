//! Batches: concurrent across people, in order for each person.

use std::collections::HashMap;
use std::future::Future;

use futures::StreamExt;
use segment_model::{Message, Traits};

use super::{Outcome, Pipeline, PipelineError};

/// Processes `messages` through `pipeline`: messages that share an identifier run one after
/// the other in input order, other groups run concurrently (at most `concurrency` groups at
/// once). After a retryable failure the rest of its group is not attempted
/// ([`PipelineError::Blocked`]), so a person's later message never overtakes an earlier one
/// that the source will redeliver.
pub(crate) async fn run<P: Pipeline + ?Sized>(
    pipeline: &P,
    messages: Vec<Message>,
    concurrency: usize,
) -> Vec<Result<Outcome, PipelineError>> {
    in_person_order(
        &messages,
        concurrency,
        |message| pipeline.process(message),
        |result| matches!(result, Err(error) if error.is_retryable()),
    )
    .await
    .into_iter()
    .map(|result| result.unwrap_or(Err(PipelineError::Blocked)))
    .collect()
}

/// Runs `process` over a batch the way [`Pipeline::process_batch`] does, for hosts that route
/// one batch to several flows of their own: messages tied to one person (a shared userId,
/// anonymousId, alias previousId or email, transitively) run one after the other in input
/// order, different people run concurrently (at most `concurrency` at once, 0 counts as 1).
///
/// Once `blocks` says a result must be retried by the source (e.g. a retryable error), the rest
/// of that person's messages are not attempted: their slot is `None`, so a later message never
/// overtakes an earlier one the source will redeliver. One slot per message, in input order.
///
/// ```
/// use cio_segment_sync::pipeline::in_person_order;
/// use cio_segment_sync::segment_model::Message;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let messages = vec![
///     Message::from_str(r#"{"type":"track","userId":"u1","event":"First"}"#)?,
///     Message::from_str(r#"{"type":"track","userId":"u1","event":"Second"}"#)?,
///     Message::from_str(r#"{"type":"track","userId":"u2","event":"Other"}"#)?,
/// ];
/// // The first message of u1 "fails": the second of u1 is not attempted, u2 is.
/// let results = in_person_order(
///     &messages,
///     8,
///     |message| async move { message.event() != Some("First") },
///     |ok: &bool| !ok,
/// )
/// .await;
/// assert_eq!(results, [Some(false), None, Some(true)]);
/// # Ok(()) }
/// ```
pub async fn in_person_order<'a, T, F, Fut, B>(
    messages: &'a [Message],
    concurrency: usize,
    process: F,
    blocks: B,
) -> Vec<Option<T>>
where
    F: Fn(&'a Message) -> Fut,
    Fut: Future<Output = T>,
    B: Fn(&T) -> bool,
{
    let total = messages.len();
    let groups = group_by_identity(messages);
    let mut results: Vec<(usize, Option<T>)> = Vec::with_capacity(total);
    // Futures built up front (each starts when first polled): a stream `map` closure here
    // would make the batch future fail the `Send` check over the borrowed messages.
    let tasks: Vec<_> = groups
        .into_iter()
        .map(|group| run_group(group, &process, &blocks))
        .collect();
    let mut finished = futures::stream::iter(tasks).buffer_unordered(concurrency.max(1));
    while let Some(group) = finished.next().await {
        results.extend(group);
    }
    // Every index was in exactly one group: sorting restores input order.
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// One person's messages, in order; after a blocking result the rest are not attempted.
async fn run_group<'a, T, F, Fut, B>(
    group: Vec<(usize, &'a Message)>,
    process: &F,
    blocks: &B,
) -> Vec<(usize, Option<T>)>
where
    F: Fn(&'a Message) -> Fut,
    Fut: Future<Output = T>,
    B: Fn(&T) -> bool,
{
    let mut out = Vec::with_capacity(group.len());
    let mut blocked = false;
    for (index, message) in group {
        if blocked {
            out.push((index, None));
            continue;
        }
        let result = process(message).await;
        blocked = blocks(&result);
        out.push((index, Some(result)));
    }
    out
}

/// Splits messages into groups connected by a shared userId, anonymousId, alias previousId or
/// email (transitively). Each group keeps input order.
fn group_by_identity(messages: &[Message]) -> Vec<Vec<(usize, &Message)>> {
    let mut sets = DisjointSets::new(messages.len());
    let mut owner: HashMap<String, usize> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        for key in identity_keys(message) {
            match owner.get(&key) {
                Some(&first) => sets.union(first, index),
                None => {
                    owner.insert(key, index);
                }
            }
        }
    }
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<(usize, &Message)>> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let root = sets.find(index);
        let slot = *group_of_root.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        if let Some(group) = groups.get_mut(slot) {
            group.push((index, message));
        }
    }
    groups
}

/// The identifiers that tie a message to a person, namespaced loosely: ids of every kind share
/// one namespace, which can only join groups that need not be joined (less concurrency), never
/// split a person.
fn identity_keys(message: &Message) -> Vec<String> {
    let mut keys = Vec::with_capacity(4);
    let mut id = |value: Option<&segment_model::Id>| {
        if let Some(value) = value {
            let text = value.as_str();
            let text = text.trim();
            if !text.is_empty() {
                keys.push(format!("id:{text}"));
            }
        }
    };
    id(message.user_id());
    id(message.anonymous_id());
    if let Message::Alias(alias) = message {
        id(alias.previous_id.as_ref());
    }
    let emails = [
        match message {
            Message::Identify(identify) => identify.traits.as_ref().and_then(Traits::email),
            _ => None,
        },
        message.context().and_then(|c| c.email()),
    ];
    for email in emails.into_iter().flatten() {
        let email = email.trim().to_lowercase();
        if !email.is_empty() {
            keys.push(format!("email:{email}"));
        }
    }
    keys
}

/// Union-find over `0..len`.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(len: usize) -> Self {
        Self {
            parent: (0..len).collect(),
        }
    }

    fn find(&mut self, mut node: usize) -> usize {
        // Callers pass indexes below `len`, and every parent is such an index: indexing is in
        // bounds.
        while self.parent[node] != node {
            let grandparent = self.parent[self.parent[node]];
            self.parent[node] = grandparent;
            node = grandparent;
        }
        node
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // Same bounds as `find`.
            self.parent[rb] = ra;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> Message {
        Message::from_str(json).unwrap()
    }

    fn indexes(groups: &[Vec<(usize, &Message)>]) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = groups
            .iter()
            .map(|g| g.iter().map(|(i, _)| *i).collect())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn groups_join_through_shared_identifiers_and_keep_order() {
        let messages = vec![
            msg(r#"{"type":"track","anonymousId":"a1","event":"E"}"#),
            msg(r#"{"type":"track","userId":"u2","event":"E"}"#),
            msg(r#"{"type":"identify","userId":"u1","anonymousId":"a1"}"#),
            msg(r#"{"type":"track","userId":"u1","event":"E"}"#),
            msg(r#"{"type":"alias","previousId":"u3","userId":"u2"}"#),
            msg(r#"{"type":"track","event":"E","context":{"traits":{"email":"X@y.co"}}}"#),
            msg(r#"{"type":"identify","userId":"u9","traits":{"email":"x@y.co "}}"#),
            msg(r#"{"type":"track","event":"no identity"}"#),
            msg(r#"{"type":"track","userId":"u3","event":"E"}"#),
        ];
        let groups = group_by_identity(&messages);
        assert_eq!(
            indexes(&groups),
            vec![vec![0, 2, 3], vec![1, 4, 8], vec![5, 6], vec![7]]
        );
        for group in &groups {
            assert!(group.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }
}
