//! The runner hardening itself before it reads a byte from the host (it dies with its parent,
//! gains no privileges, writes no core dump, takes the memory limit), and the CPU limit it
//! moves before each call when the host asks for one.

use super::Exit;
use crate::runtime::isolation::config::{MEMORY_ENV, PARENT_ENV};

/// Dies with the host, gains no privileges, writes no core dump, takes the memory limit.
pub(super) fn harden() -> Result<(), Exit> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{self as p, Resource, Rlimit};
        p::set_parent_process_death_signal(Some(p::Signal::KILL))
            .map_err(|e| Exit::system("PR_SET_PDEATHSIG", e))?;
        // The parent may have died before the line above: then we were re-parented already.
        let parent = std::env::var(PARENT_ENV).ok();
        let now = p::getppid().map(|pid| pid.as_raw_nonzero().get().to_string());
        if parent.is_some() && parent != now {
            return Err(Exit::Orphaned);
        }
        rustix::thread::set_no_new_privs(true).map_err(|e| Exit::system("no_new_privs", e))?;
        let none = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        p::setrlimit(Resource::Core, none).map_err(|e| Exit::system("RLIMIT_CORE", e))?;
        if let Some(bytes) = std::env::var(MEMORY_ENV)
            .ok()
            .and_then(|b| b.parse::<u64>().ok())
        {
            let limit = Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            };
            p::setrlimit(Resource::As, limit).map_err(|e| Exit::system("RLIMIT_AS", e))?;
        }
    }
    Ok(())
}

/// Moves the soft CPU-time limit to `seconds` past what the runner has used so far (a call that
/// spins past it gets `SIGXCPU`, which ends the runner); `None` lifts it to the hard limit.
/// Two system calls or more: only for managers that set `cpu_per_call`.
#[cfg(target_os = "linux")]
pub(super) fn limit_cpu_from_now(seconds: Option<u64>) {
    use rustix::process::{self as p, Resource, Rlimit};
    let hard = p::getrlimit(Resource::Cpu).maximum;
    let Some(seconds) = seconds else {
        let _ = p::setrlimit(
            Resource::Cpu,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        );
        return;
    };
    let used = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name's closing parenthesis; utime and stime are the
            // 14th and 15th fields of the line, in clock ticks (100 a second on Linux).
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks / 100)
        })
        .unwrap_or(0);
    let soft = (used + seconds + 1).min(hard.unwrap_or(u64::MAX));
    if let Err(error) = p::setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    ) {
        eprintln!("gp runner: cannot set the CPU limit of this call (RLIMIT_CPU): {error}");
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn limit_cpu_from_now(_seconds: Option<u64>) {}
