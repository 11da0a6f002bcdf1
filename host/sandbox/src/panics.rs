//! A panic in code that decodes a tenant's data (a reader of a hostile file) is that tenant's
//! one-line failure, not the end of the process or a silent end of data: [`catch`] runs such
//! code and returns the panic's message instead, and the process's panic hook stays quiet for
//! panics it catches (the message belongs in the tenant's failure, not on the host's stderr).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs code under [`catch`].
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Wraps the process's panic hook, once, so that panics [`catch`] will turn into errors print
/// nothing; every other panic prints as before.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// A panic caught by [`catch`]: its message, cut to 256 bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Panicked(String);

/// Runs `f`; a panic in it becomes `Err` with its message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    install_hook();
    let outer = CATCHING.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Panicked(sluice_text::cut(&message, 256).into_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_its_message_and_work_goes_on() {
        let caught = super::catch(|| -> u32 { panic!("byte array offset overflow") });
        assert_eq!(
            caught.unwrap_err().to_string(),
            "byte array offset overflow"
        );
        assert_eq!(super::catch(|| 7), Ok(7));
    }
}
