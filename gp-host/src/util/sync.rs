//! Locks, with one policy for poisoning: recover the guard.
//!
//! A mutex is poisoned when a thread panicked while holding it. Every lock in gp-host guards
//! data whose invariants hold between statements (a map, a counter, a queue), and the panics
//! that can happen under one come from code gp does not control (an event subscriber, a
//! plugin's hook, an application's admission check), which gp catches and logs. Refusing
//! every later caller would turn one caught panic into a host that can no longer load, call
//! or unload anything: the opposite of what gp promises. So every lock goes through these
//! helpers, and no code in the crate calls `lock().unwrap()` or `expect` on a lock.

#[cfg(any(feature = "isolate", feature = "hub"))]
use std::sync::Condvar;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
#[cfg(any(feature = "isolate", feature = "hub"))]
use std::time::Duration;

/// Locks `mutex`, recovering it if a panic poisoned it.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Read-locks `lock`, recovering it if a panic poisoned it.
pub(crate) fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

/// Write-locks `lock`, recovering it if a panic poisoned it.
pub(crate) fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Waits on `condvar` for at most `timeout`, recovering the guard if a panic poisoned it.
#[cfg(feature = "isolate")]
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

/// Waits on `condvar` for at most `timeout` while `condition` holds, recovering the guard if
/// a panic poisoned it.
#[cfg(feature = "hub")]
pub(crate) fn wait_timeout_while<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
    condition: impl FnMut(&mut T) -> bool,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout_while(guard, timeout, condition)
        .unwrap_or_else(|p| p.into_inner())
        .0
}

/// Waits on `condvar`, recovering the guard if a panic poisoned it.
#[cfg(feature = "isolate")]
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar.wait(guard).unwrap_or_else(|p| p.into_inner())
}

/// Waits until `thread` ends or `deadline` passes, whichever is first; `true` if it ended
/// (and was joined). A thread still running at the deadline is detached: it ends with the
/// process. For what a shutdown stops and may not wait on forever (a follower, the watcher).
#[cfg(any(feature = "hub", feature = "watch"))]
pub(crate) fn join_until(
    thread: std::thread::JoinHandle<()>,
    deadline: std::time::Instant,
) -> bool {
    while !thread.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if thread.is_finished() {
        let _ = thread.join();
        true
    } else {
        // Dropping the handle detaches the thread.
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_poisoned_lock_is_recovered_with_its_data() {
        let mutex = Arc::new(Mutex::new(vec![1]));
        let poisoner = Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let mut guard = poisoner.lock().unwrap();
            guard.push(2);
            panic!("poison it");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*super::lock(&mutex), [1, 2]);
    }

    #[cfg(any(feature = "hub", feature = "watch"))]
    #[test]
    fn join_until_joins_a_thread_that_ends_and_leaves_one_that_does_not() {
        use std::time::{Duration, Instant};
        let quick = std::thread::spawn(|| {});
        assert!(super::join_until(
            quick,
            Instant::now() + Duration::from_secs(10)
        ));
        let (_keep, held) = std::sync::mpsc::channel::<()>();
        let stuck = std::thread::spawn(move || {
            let _ = held.recv();
        });
        let started = Instant::now();
        assert!(!super::join_until(
            stuck,
            started + Duration::from_millis(50)
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
