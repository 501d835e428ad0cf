//! The crate's own rayon pool, so drift work never competes with the global pool or ORT/torch threads.

use std::sync::OnceLock;

static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();

/// The named `driftline-{i}` pool, one thread per available core.
///
/// # Panics
/// If the operating system refuses to start the pool's threads (nothing can run then).
pub fn pool() -> &'static rayon::ThreadPool {
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("driftline-{i}"))
            .build()
            .expect("building the driftline rayon pool")
    })
}
