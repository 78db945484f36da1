//! Settings shared by the benches: short warm-up and measurement so a whole
//! bench file runs in about a minute (`cargo bench --bench <name>`).

use criterion::Criterion;
use std::time::Duration;

pub fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}
