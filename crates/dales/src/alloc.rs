//! How the process's allocator treats the large buffers of a training step.
//!
//! A training step allocates its activations and gradients afresh (tens of megabytes for a
//! convolutional network) and frees them at its end. glibc's defaults serve each buffer above
//! a threshold with its own `mmap` and return freed memory at the top of the heap to the
//! system, so every step pays page faults to touch the same amount of fresh memory again. The
//! settings here keep freed memory in the process for the next step: measured on the conv
//! DANN step at batch 32, 39 ms with the defaults and 33 ms with these
//! (docs/benchmarks.md).

/// Serve large buffers from the heap and keep freed memory for reuse (glibc only; a no-op
/// elsewhere).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread
    // starts and its failure (a value out of range) leaves the default in place.
    unsafe {
        // The largest threshold glibc accepts is 32 MiB on 64-bit systems.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
