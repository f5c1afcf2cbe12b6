//! The stable-Rust fuzz driver, run by `cargo test -p virtplug-fuzz` (and so by CI): for every
//! target it (1) replays each file of `corpus/<target>/` and `regressions/<target>/`, then
//! (2) runs a bounded, deterministic random-mutation loop (`virtplug_fuzz::mutate`).
//!
//! Each target runs in a child process (this same binary, `VIRTPLUG_FUZZ_CHILD=<target>`), each
//! input under `catch_unwind`. A panic is reported by the child, which goes on; a stack overflow
//! or any other abort kills the child, and the parent regenerates the input from the child's last
//! `step` line (inputs depend only on the seed), reports it, and restarts the child after it.
//! Every failing input is written to `artifacts/<target>/` (gitignored) to become a regression
//! file. Bounded by iteration counts, never by time.
//!
//! Environment: `FUZZ_ITERS` (mutations per target, default 4000), `FUZZ_SEED` (default
//! 0x5eed; decimal or 0x-hex), `FUZZ_TARGETS` (comma-separated names, default all), `FUZZ_JOBS`
//! (children at once, default the CPU count), `FUZZ_STACK_KIB` (each child's fuzzing thread,
//! default 2048: the daemon serves requests on tokio worker threads, which have 2 MiB stacks),
//! `FUZZ_INPUT` (replay only this file, e.g. an artifact, through the selected targets),
//! `FUZZ_HANG_SECS` (one input running longer is reported as a hang, default 300).

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead, BufReader, Read, Write},
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use virtplug_fuzz::{
    TARGETS, Target,
    mutate::{Mutator, fnv1a},
};

const CHILD_ENV: &str = "VIRTPLUG_FUZZ_CHILD";
const RESUME_ENV: &str = "VIRTPLUG_FUZZ_RESUME";
const DEFAULT_ITERS: usize = 4000;
const DEFAULT_SEED: u64 = 0x5eed;
/// One input running this long is a hang (an endless loop), not a slow input: the slowest seen
/// in a debug build under load takes a few seconds.
const DEFAULT_HANG_SECS: u64 = 300;
/// Mutated inputs are clipped here: big enough for deep nesting and many attributes.
const MAX_LEN: usize = 1 << 20;
/// Panics reported per target before the child stops (one bug tends to fire again and again).
const MAX_PANICS: usize = 5;
/// Child crashes (aborts) per target before the parent gives up on that target.
const MAX_CRASHES: usize = 8;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_num(name: &str, default: u64) -> u64 {
    let Ok(v) = std::env::var(name) else { return default };
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    parsed.unwrap_or_else(|_| {
        eprintln!("fuzz: ignoring {name}={v}: not a number");
        default
    })
}

fn iters() -> usize {
    usize::try_from(env_num("FUZZ_ITERS", DEFAULT_ITERS as u64)).unwrap_or(DEFAULT_ITERS)
}

/// The files of `dir`, sorted by name (README files excepted), missing directory = none.
fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.retain(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("README")));
    files.sort();
    files
}

/// What one target's run reads: its seed files (corpus, then regressions) and the mutation pool
/// (every target's corpus, so that XML can land in JSON and the other way round).
struct Plan {
    files: Vec<PathBuf>,
    pool: Vec<Vec<u8>>,
    iters: usize,
    seed: u64,
}

impl Plan {
    fn new(target: &'static Target) -> Self {
        let mut files = dir_files(&root().join("corpus").join(target.name));
        files.extend(dir_files(&root().join("regressions").join(target.name)));
        let pool = TARGETS
            .iter()
            .flat_map(|t| dir_files(&root().join("corpus").join(t.name)))
            .filter_map(|p| fs::read(p).ok())
            .collect();
        let seed = env_num("FUZZ_SEED", DEFAULT_SEED) ^ fnv1a(target.name.as_bytes());
        if let Some(input) = std::env::var_os("FUZZ_INPUT") {
            // Reproduce one input (an artifact): that file only, no mutations.
            return Self { files: vec![PathBuf::from(input)], pool, iters: 0, seed };
        }
        Self { files, pool, iters: iters(), seed }
    }

    fn steps(&self) -> usize {
        self.files.len() + self.iters
    }

    /// Every step's input from `from` on, with where it came from.
    fn inputs(&self, from: usize) -> impl Iterator<Item = (usize, Vec<u8>, String)> + '_ {
        let mut mutator = Mutator::new(self.seed, &self.pool, MAX_LEN);
        (0..self.steps()).filter_map(move |step| {
            if let Some(path) = self.files.get(step) {
                if step < from {
                    return None;
                }
                let data = fs::read(path).unwrap_or_default();
                return Some((step, data, path.display().to_string()));
            }
            // Mutation inputs depend on all earlier ones: generate, and skip those before `from`.
            let data = mutator.next_input();
            (step >= from)
                .then(|| (step, data, format!("mutation {} (seed {:#x})", step - self.files.len(), self.seed)))
        })
    }
}

/// Writes a failing input to `artifacts/<target>/` and describes it.
fn report(target: &str, kind: &str, origin: &str, data: &[u8], why: &str) -> String {
    let dir = root().join("artifacts").join(target);
    let path = dir.join(format!("{kind}-{:016x}", fnv1a(data)));
    let saved = fs::create_dir_all(&dir).and_then(|()| fs::write(&path, data));
    let shown = data.len().min(256);
    let hex: String = data[..shown].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "FUZZ FAILURE in target {target} ({kind}): {why}\n  input: {origin}, {} bytes\n  saved: {}{}\n  hex{}: {hex}\n  text: {:?}\n",
        data.len(),
        path.display(),
        saved.err().map(|e| format!(" (not written: {e})")).unwrap_or_default(),
        if shown < data.len() { " (first 256 bytes)" } else { "" },
        String::from_utf8_lossy(&data[..data.len().min(512)]),
    )
}

// ---- child: runs one target in-process ----

static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn child(name: &str) -> ExitCode {
    let Some(target) = virtplug_fuzz::target(name) else {
        eprintln!("fuzz: unknown target {name}");
        return ExitCode::FAILURE;
    };
    let from = usize::try_from(env_num(RESUME_ENV, 0)).unwrap_or(0);
    panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = info.to_string();
        }
    }));
    let stack = usize::try_from(env_num("FUZZ_STACK_KIB", 2048)).unwrap_or(2048) * 1024;
    let name = target.name;
    let worker = thread::Builder::new().name(format!("fuzz-{name}")).stack_size(stack).spawn(move || {
        let plan = Plan::new(target);
        let mut panics = 0;
        let mut out = std::io::stdout().lock();
        for (step, data, origin) in plan.inputs(from) {
            // The parent reads this line to know which input a crash (abort) happened on.
            let _ = writeln!(out, "step {step}").and_then(|()| out.flush());
            if panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&data))).is_err() {
                let why = LAST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
                eprint!("{}", report(name, "panic", &origin, &data, &why));
                let _ = writeln!(out, "panic {step}");
                panics += 1;
                if panics >= MAX_PANICS {
                    eprintln!("fuzz: {name}: stopping after {MAX_PANICS} panics");
                    break;
                }
            }
        }
        let _ = writeln!(out, "done");
        panics
    });
    match worker.map(|w| w.join()) {
        Ok(Ok(0)) => ExitCode::SUCCESS,
        Ok(Ok(_)) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

// ---- parent: one child per target, restarted after a crash ----

struct Outcome {
    name: &'static str,
    files: usize,
    iters: usize,
    panics: usize,
    crashes: usize,
    secs: f64,
    log: String,
}

fn run_target(target: &'static Target) -> Outcome {
    let started = Instant::now();
    let plan = Plan::new(target);
    let mut out = Outcome {
        name: target.name,
        files: plan.files.len(),
        iters: plan.iters,
        panics: 0,
        crashes: 0,
        secs: 0.0,
        log: String::new(),
    };
    let hang = Duration::from_secs(env_num("FUZZ_HANG_SECS", DEFAULT_HANG_SECS));
    let mut from = 0;
    loop {
        let exe =
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from(std::env::args().next().unwrap_or_default()));
        let spawned = Command::new(exe)
            .env(CHILD_ENV, target.name)
            .env(RESUME_ENV, from.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                out.log.push_str(&format!("fuzz: cannot start the child for {}: {e}\n", target.name));
                out.crashes += 1;
                break;
            }
        };
        let mut stderr = child.stderr.take();
        let err_reader = thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        let mut last_step = None;
        let mut done = false;
        let mut hung = false;
        // Lines arrive through a channel so that an input that never finishes (an endless loop)
        // is noticed: a watchdog, not a speed check — the limit is minutes per single input.
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        loop {
            let line = match rx.recv_timeout(hang) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    hung = true;
                    let _ = child.kill();
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if let Some(n) = line.strip_prefix("step ") {
                last_step = n.parse::<usize>().ok();
            } else if line.starts_with("panic ") {
                out.panics += 1;
            } else if line == "done" {
                done = true;
            }
        }
        let status = child.wait();
        let stderr = err_reader.join().unwrap_or_default();
        out.log.push_str(&stderr);
        if done {
            break;
        }
        // The child died on an input: regenerate it from the step number and report it.
        out.crashes += 1;
        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        let (kind, why) = if hung {
            ("hang", format!("one input ran for more than {} s; the child was killed", hang.as_secs()))
        } else {
            ("crash", format!("the child process died ({status}); its last words: {}", tail(&stderr)))
        };
        match last_step.and_then(|s| plan.inputs(s).next()) {
            Some((step, data, origin)) => {
                out.log.push_str(&report(target.name, kind, &origin, &data, &why));
                from = step + 1;
            }
            None => {
                out.log.push_str(&format!("FUZZ FAILURE in target {}: {why} (before any input)\n", target.name));
                break;
            }
        }
        if out.crashes >= MAX_CRASHES {
            out.log.push_str(&format!("fuzz: {}: giving up after {MAX_CRASHES} crashes\n", target.name));
            break;
        }
        if from >= plan.steps() {
            break;
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    out
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(2)..].join(" | ")
}

fn parent() -> ExitCode {
    let wanted: Option<Vec<String>> =
        std::env::var("FUZZ_TARGETS").ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    // Free arguments filter by name as libtest's do (`cargo test -p virtplug-fuzz bundle`); a
    // filter meant for another test binary selects nothing here.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let queue: VecDeque<&'static Target> = TARGETS
        .iter()
        .filter(|t| wanted.as_ref().is_none_or(|w| w.iter().any(|n| n == t.name)))
        .filter(|t| filters.is_empty() || filters.iter().any(|f| t.name.contains(f.as_str())))
        .collect();
    if queue.is_empty() {
        if wanted.is_some() && filters.is_empty() {
            eprintln!("fuzz: no target matches FUZZ_TARGETS");
            return ExitCode::FAILURE;
        }
        println!("fuzz: no target matches the filter");
        return ExitCode::SUCCESS;
    }
    let cpus = thread::available_parallelism().map_or(1, usize::from) as u64;
    let jobs = usize::try_from(env_num("FUZZ_JOBS", cpus)).unwrap_or(1).max(1);
    match std::env::var_os("FUZZ_INPUT") {
        Some(input) => println!("fuzz: replaying {} through {} targets", Path::new(&input).display(), queue.len()),
        None => println!(
            "fuzz: {} targets, {} mutations each, seed {:#x}, {jobs} at a time",
            queue.len(),
            iters(),
            env_num("FUZZ_SEED", DEFAULT_SEED)
        ),
    }
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(queue));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let (queue, results) = (Arc::clone(&queue), Arc::clone(&results));
            thread::spawn(move || {
                // The guard lives inside the closure: the queue is not held while a target runs.
                let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
                while let Some(t) = next() {
                    let outcome = run_target(t);
                    if let Ok(mut r) = results.lock() {
                        r.push(outcome);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    results.sort_by_key(|o| TARGETS.iter().position(|t| t.name == o.name));
    let mut failed = 0;
    for o in &results {
        eprint!("{}", o.log);
        println!(
            "fuzz: {:<12} {:>3} files + {:>5} mutations: {} panics, {} crashes ({:.1} s)",
            o.name, o.files, o.iters, o.panics, o.crashes, o.secs
        );
        failed += usize::from(o.panics + o.crashes > 0);
    }
    println!(
        "fuzz: {} of {} targets clean in {:.1} s{}",
        results.len() - failed,
        results.len(),
        started.elapsed().as_secs_f64(),
        if failed > 0 { "; failing inputs are in tests/fuzz/artifacts/" } else { "" }
    );
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn main() -> ExitCode {
    match std::env::var(CHILD_ENV) {
        Ok(name) => child(&name),
        Err(_) => parent(),
    }
}
