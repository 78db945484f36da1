//! Networking: listeners, one mio event loop per worker thread, connection
//! buffers. Knows nothing about commands beyond `protocol::process`.

use crate::command::Shared;
use std::sync::Arc;

/// Runs the server until shutdown. Returns the process exit code.
pub fn run(shared: Arc<Shared>) -> std::io::Result<i32> {
    let _ = shared;
    Ok(0)
}
