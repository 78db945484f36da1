//! `incr`/`decr`: 64-bit unsigned arithmetic on a decimal value (incr wraps,
//! decr stops at 0; the store does the arithmetic under the item's lock).

use super::Ctx;
use crate::storage::{ArithOutcome, ArithRequest};

#[derive(Clone, Copy, Debug)]
pub struct Arith<'a> {
    pub key: &'a [u8],
    pub incr: bool,
    pub delta: u64,
}

impl<'a> Arith<'a> {
    pub fn execute(&self, ctx: &Ctx) -> ArithOutcome {
        let outcome = ctx
            .shared
            .store
            .arith(&ArithRequest::new(self.key, self.incr, self.delta));
        let st = ctx.stats;
        match (outcome, self.incr) {
            (ArithOutcome::Value { class, .. }, true) => {
                st.incr_hits.incr();
                st.classes.get(class.into()).incr_hits.incr();
            }
            (ArithOutcome::Value { class, .. }, false) => {
                st.decr_hits.incr();
                st.classes.get(class.into()).decr_hits.incr();
            }
            (ArithOutcome::NotFound, true) => st.incr_misses.incr(),
            (ArithOutcome::NotFound, false) => st.decr_misses.incr(),
            _ => {}
        }
        outcome
    }
}
