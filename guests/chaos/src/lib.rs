//! The chaos guest: from its `seed` parameter, `steps` random host calls with random, mostly
//! invalid, arguments (other tenants, malformed and oversized names, stale and forged handles,
//! garbage report bytes, control characters in logs), then a summary of what it saw.
//!
//! It counts the denials the host told it of (`denials` figure) so the test can check that every
//! one is in the audit trail. One step in 500 forges a handle, which ends the run as a guest
//! fault: chaos includes dying.

use sluice_guest::bindings::sluice::etl::datasets::{self, Dataset};
use sluice_guest::bindings::sluice::etl::log::{Level, log};
use sluice_guest::bindings::sluice::etl::reports::{self, Report};
use sluice_guest::{Error, Figure, Params, RunError, Summary, Transform, param};

struct Chaos;

/// xorshift64*: small, deterministic per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, max: u64) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| char::from_u32(self.below(0x3000) as u32).unwrap_or('?'))
            .collect()
    }
}

#[derive(Default)]
struct Seen {
    denials: u64,
    invalid: u64,
    not_found: u64,
    limits: u64,
    ok: u64,
    rows: u64,
}

impl Seen {
    fn note<T>(&mut self, result: Result<T, Error>) -> Option<T> {
        match result {
            Ok(v) => {
                self.ok += 1;
                Some(v)
            }
            Err(Error::Denied(_)) => {
                self.denials += 1;
                None
            }
            Err(Error::Invalid(_)) => {
                self.invalid += 1;
                None
            }
            Err(Error::NotFound(_)) => {
                self.not_found += 1;
                None
            }
            Err(Error::Limit(_)) => {
                self.limits += 1;
                None
            }
        }
    }
}

impl Transform for Chaos {
    fn run(params: Params) -> Result<Summary, RunError> {
        let seed: u64 = param(&params, "seed")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let steps: u64 = param(&params, "steps")
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let me = sluice_guest::whoami().tenant;
        let long = "z".repeat(300);
        let tenants = [
            me.as_str(),
            me.as_str(),
            "bank",
            "retail",
            "",
            "x\n[ALLOWED]",
            "../etc",
            "*",
            long.as_str(),
        ];
        let resources = [
            "analytics",
            "analytics",
            "reports",
            "",
            "a:b",
            "analytics\u{1b}[2K",
        ];
        let names = [
            "visits",
            "transactions",
            "orders",
            "",
            "nope",
            "v'; DROP TABLE visits;--",
        ];
        let mut seen = Seen::default();
        let mut datasets: Vec<Dataset> = Vec::new();
        let mut drafts: Vec<Report> = Vec::new();
        for _ in 0..steps {
            match rng.below(14) {
                0 => drop(sluice_guest::whoami()),
                1 => {
                    let (t, r) = (rng.pick(&tenants), rng.pick(&resources));
                    seen.note(datasets::list(t, r));
                }
                2 | 3 => {
                    let (t, r, n) = (rng.pick(&tenants), rng.pick(&resources), rng.pick(&names));
                    // All columns, a real one, or a name from the pool (mostly not a column).
                    let columns: Option<Vec<String>> = match rng.below(3) {
                        0 => None,
                        1 => Some(vec!["stay_days".to_string()]),
                        _ => Some(vec![
                            rng.pick(&names).to_string();
                            1 + rng.below(2) as usize
                        ]),
                    };
                    if let Some(d) = seen.note(datasets::open(t, r, n, columns.as_deref())) {
                        datasets.push(d);
                    }
                }
                4 | 5 if !datasets.is_empty() => {
                    let i = rng.below(datasets.len() as u64) as usize;
                    let max_rows = [0, 1, 7, 65_536, u32::MAX][rng.below(5) as usize];
                    if let Some(Some(batch)) = seen.note(datasets[i].next_batch(max_rows)) {
                        seen.rows += u64::from(batch.rows);
                    }
                }
                6 if !datasets.is_empty() => {
                    let i = rng.below(datasets.len() as u64) as usize;
                    drop(datasets.swap_remove(i).schema());
                }
                7 => {
                    if let Some(r) = seen.note(reports::create(rng.pick(&tenants))) {
                        drafts.push(r);
                    }
                }
                8 if !drafts.is_empty() => {
                    let i = rng.below(drafts.len() as u64) as usize;
                    let bytes = if rng.below(2) == 0 {
                        rng.bytes(4096)
                    } else {
                        b"{\"chaos\":true}".to_vec()
                    };
                    seen.note(drafts[i].append(&bytes));
                }
                9 if !drafts.is_empty() => {
                    let i = rng.below(drafts.len() as u64) as usize;
                    seen.note(drafts[i].commit());
                }
                10 if !drafts.is_empty() => {
                    let i = rng.below(drafts.len() as u64) as usize;
                    drop(drafts.swap_remove(i));
                }
                11 => {
                    let level = [Level::Debug, Level::Info, Level::Warn, Level::Error]
                        [rng.below(4) as usize];
                    log(level, &rng.text(200));
                }
                12 => {
                    if rng.below(4) == 0 {
                        print!("{}", rng.text(100));
                    } else {
                        std::thread::sleep(std::time::Duration::from_micros(rng.below(2000)));
                    }
                }
                13 if rng.below(500) == 0 => {
                    // SAFETY: none; a forged handle on purpose, which the host must refuse.
                    let forged = unsafe { Dataset::from_handle(rng.next() as u32 | 1 << 20) };
                    seen.note(forged.next_batch(1));
                }
                _ => {}
            }
        }
        let figure = |name: &str, value: u64| Figure {
            name: name.to_string(),
            value: value.to_string(),
        };
        Ok(Summary {
            figures: vec![
                figure("denials", seen.denials),
                figure("invalid", seen.invalid),
                figure("not_found", seen.not_found),
                figure("limits", seen.limits),
                figure("ok", seen.ok),
                figure("rows", seen.rows),
            ],
        })
    }
}

sluice_guest::export_transform!(Chaos);
