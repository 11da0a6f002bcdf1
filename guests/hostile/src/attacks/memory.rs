//! Exhausting memory: the heap and the stack.

use sluice_guest::{Params, RunError, Summary};

/// Allocates until something gives.
pub fn memory_hog(_: &Params) -> Result<Summary, RunError> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(std::hint::black_box(vec![7u8; 16 << 20]));
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 4096]);
    recurse(depth + 1) + u64::from(frame[0])
}

/// Recurses without end, 4 KiB of stack per call.
pub fn stack_overflow(_: &Params) -> Result<Summary, RunError> {
    Err(RunError::Failed(format!("returned {}", recurse(0))))
}
