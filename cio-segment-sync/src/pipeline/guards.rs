//! The front every Segment-input flow shares: dedupe, then the loop guard, then the flow's own
//! stages.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use segment_model::Message;

use super::{Outcome, PipelineError, SkipReason, Step, dedupe_key};
use crate::dedupe::{Deduper, DeduperExt, Once};
use crate::loop_guard::LoopGuard;
use crate::outcome::describe;

/// Dedupe → loop guard, written once for every flow that takes Segment messages.
///
/// [`Guards::run`] claims the message's [dedupe key](super::dedupe_key) for the lease
/// ([`DeduperExt::once`]), drops a message this library wrote itself
/// ([`SkipReason::OwnEcho`]), and only then runs the flow's stages. The claim is committed when
/// the stages finish the message (`Ok`) and released when they fail (`Err`), so the source's
/// retry of a failed message is delivered, never skipped as a duplicate.
#[derive(Clone)]
pub struct Guards {
    deduper: Arc<dyn Deduper>,
    loop_guard: Arc<dyn LoopGuard>,
    lease: Duration,
}

impl fmt::Debug for Guards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guards")
            .field("deduper", &self.deduper)
            .field("loop_guard", &self.loop_guard)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Guards {
    /// Guards over `deduper` and `loop_guard`; a claim lasts `lease` (it must outlast the
    /// slowest delivery, retries included).
    pub fn new(deduper: Arc<dyn Deduper>, loop_guard: Arc<dyn LoopGuard>, lease: Duration) -> Self {
        Self {
            deduper,
            loop_guard,
            lease,
        }
    }

    /// The deduper.
    pub fn deduper(&self) -> &Arc<dyn Deduper> {
        &self.deduper
    }

    /// The loop guard.
    pub fn loop_guard(&self) -> &Arc<dyn LoopGuard> {
        &self.loop_guard
    }

    /// The claim's lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Runs `stages` for `message` once: see the [type docs](Self).
    ///
    /// # Errors
    ///
    /// [`PipelineError::InFlight`] when another worker holds the message,
    /// [`PipelineError::Unkeyable`] when no dedupe key can be derived, a store failure of the
    /// deduper or the loop guard, or the stages' own error.
    pub async fn run<F, Fut>(&self, message: &Message, stages: F) -> Result<Outcome, PipelineError>
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<Outcome, PipelineError>> + Send,
    {
        let kind = message.kind().as_str();
        let key = dedupe_key(message).map_err(PipelineError::Unkeyable)?;
        let guarded =
            || async move {
                let verdict = self.loop_guard.check(message).await.map_err(|source| {
                    PipelineError::Store {
                        step: Step::LoopGuard,
                        source,
                    }
                })?;
                if verdict.is_echo() {
                    tracing::debug!(
                        kind,
                        ?verdict,
                        "Dropped a message this library wrote (loop guard)."
                    );
                    return Ok(Outcome::Skipped(SkipReason::OwnEcho));
                }
                stages().await
            };
        let answer = self
            .deduper
            .once(&key, self.lease, guarded)
            .await
            .map_err(|source| PipelineError::Store {
                step: Step::Dedupe,
                source,
            })?;
        match answer {
            Once::Ran(Ok(outcome)) => {
                tracing::debug!(kind, ?outcome, "Finished a message.");
                Ok(outcome)
            }
            Once::Ran(Err(error)) => {
                tracing::debug!(kind, error = %describe(&error), "A message failed; not acking it.");
                Err(error)
            }
            Once::InFlight => {
                tracing::debug!(kind, "Another worker holds this message; not acking it.");
                Err(PipelineError::InFlight)
            }
            Once::Done => {
                tracing::debug!(kind, "Skipped a message finished before.");
                Ok(Outcome::Skipped(SkipReason::Duplicate))
            }
        }
    }
}
