//! Stop signals: Ctrl-C (SIGINT), a scheduler's time limit (SIGTERM) and a closed terminal
//! (SIGHUP). The first asks the runs to save their state and stop; the command then exits
//! with 128 + the signal's number (130, 143, 129). A second signal exits at once.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The first stop signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Install the handler (once per process); it runs on its own thread.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            eprintln!("warning: no signal handler: a stop signal will lose the current epoch");
            return;
        };
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
                    std::process::exit(128 + signal);
                }
                let name = match signal {
                    SIGTERM => "SIGTERM",
                    SIGHUP => "SIGHUP",
                    _ => "interrupted",
                };
                eprintln!("\n{name}: saving the current state (a second signal quits at once)");
            }
        });
    });
}

/// Whether a stop signal arrived.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The exit code of a command stopped by a signal: 128 + its number (130 without one).
pub fn exit_code() -> u8 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 130,
        s => (128 + s) as u8,
    }
}
