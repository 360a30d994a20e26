//! The instance event stream every backend hands out.

use deis_core::scheduler::InstanceEvent;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;

/// A stream of the events sent on `sender` from now on; a slow reader skips what it missed
/// (the publisher's resync repairs that) rather than blocking the scheduler.
pub(crate) fn stream(
    sender: &broadcast::Sender<InstanceEvent>,
) -> BoxStream<'static, InstanceEvent> {
    let receiver = sender.subscribe();
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}
