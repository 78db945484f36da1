//! `delete <key>`: remove an item, counting `delete_hits`/`delete_misses`.

use super::Ctx;
use crate::storage::{DeleteOutcome, DeleteRequest};

#[derive(Clone, Copy, Debug)]
pub struct Delete<'a> {
    pub key: &'a [u8],
}

impl<'a> Delete<'a> {
    pub fn execute(&self, ctx: &Ctx) -> DeleteOutcome {
        ctx.shared
            .server_stats
            .detail
            .record_delete(ctx.prefix_delimiter(), self.key);
        let outcome = ctx.shared.store.delete(&DeleteRequest::new(self.key));
        match outcome {
            DeleteOutcome::Deleted { class } => {
                ctx.stats.delete_hits.incr();
                ctx.stats.classes.get(class.into()).delete_hits.incr();
            }
            _ => ctx.stats.delete_misses.incr(),
        }
        outcome
    }
}
