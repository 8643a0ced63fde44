//! The current-thread runtime a synchronous backend runs its requests on.

/// A current-thread tokio runtime for a synchronous caller (`Backend::provide` is
/// synchronous). Built per call that goes to the network, never on a cache hit.
///
/// Dropped without waiting for its blocking pool, whose only work is hyper's name lookups
/// (getaddrinfo): after an answer, the idle resolver thread need not be woken and joined
/// first (0.3-0.5 ms of a cold ECR fetch, `bench/ecr.sh`), and after a timeout a lookup that
/// still hangs must not hold the invocation past its deadline (a plain runtime drop waits for
/// it without bound).
pub struct Blocking {
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Blocking {
    /// A runtime with I/O and time.
    pub fn new() -> std::io::Result<Blocking> {
        Ok(Blocking {
            rt: Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()?,
            ),
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime is taken only when dropped")
    }

    /// Runs `f` to completion.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt().block_on(f)
    }

    /// Enters the runtime's context (hyper clients need it to be built and dropped).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.rt().enter()
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
