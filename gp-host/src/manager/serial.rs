//! One change at a time per plugin: a change to plugin `name` (load, reload, upgrade, roll
//! back, disable, enable, unload, a sync of its folder, an install) holds `name`'s turn from
//! its first read of the disk to its last write, so two changes never interleave their files
//! or act on what the other is halfway through.
//!
//! A turn is re-entrant on its thread (a disable unloads, an enable syncs, a roll-back
//! upgrades: each inner change runs inside the outer one's turn) and is taken before the
//! manager's global change lock, never while holding it. The global lock stays what makes a
//! swap and the admission checks (route conflicts across plugins) atomic; a turn is what
//! keeps one plugin's disk and memory in step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

use crate::util::lock;

/// Whose turn it is, per plugin name.
#[derive(Default)]
pub(crate) struct Turns {
    /// The thread holding each plugin's turn, and how many times it took it.
    held: Mutex<HashMap<String, (ThreadId, usize)>>,
    released: Condvar,
    /// Counts turns ended: a sync that read the disk before it knew which plugin it was reading
    /// reads again if a turn ended meanwhile (that change may have written what it read).
    ended: AtomicU64,
}

/// A plugin's turn, held until dropped.
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
    name: String,
}

impl Turns {
    /// Waits for plugin `name`'s turn (at once if this thread holds it already).
    pub(crate) fn take(&self, name: &str) -> Turn<'_> {
        let me = std::thread::current().id();
        let mut held = lock(&self.held);
        loop {
            match held.get_mut(name) {
                None => {
                    held.insert(name.to_owned(), (me, 1));
                    break;
                }
                Some((owner, depth)) if *owner == me => {
                    *depth += 1;
                    break;
                }
                Some(_) => {
                    held = self.released.wait(held).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
        Turn {
            turns: self,
            name: name.to_owned(),
        }
    }

    /// How many turns have ended so far.
    pub(crate) fn ended(&self) -> u64 {
        self.ended.load(Ordering::Acquire)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut held = lock(&self.turns.held);
        if let Some((_, depth)) = held.get_mut(&self.name) {
            *depth -= 1;
            if *depth == 0 {
                held.remove(&self.name);
                // Counted before another thread can take the turn: it sees this change ended.
                self.turns.ended.fetch_add(1, Ordering::AcqRel);
                self.turns.released.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Turns;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_turn_is_reentrant_on_its_thread_and_exclusive_across_threads() {
        let turns = Arc::new(Turns::default());
        let outer = turns.take("a");
        let inner = turns.take("a");
        drop(inner);
        let inside = Arc::new(AtomicUsize::new(0));
        let other = {
            let (turns, inside) = (Arc::clone(&turns), Arc::clone(&inside));
            std::thread::spawn(move || {
                let _turn = turns.take("a");
                inside.store(1, Ordering::SeqCst);
                // Another plugin's turn is independent.
                let _b = turns.take("b");
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            inside.load(Ordering::SeqCst),
            0,
            "the outer turn still holds `a`"
        );
        let before = turns.ended();
        drop(outer);
        other.join().unwrap();
        assert_eq!(inside.load(Ordering::SeqCst), 1);
        assert_eq!(
            turns.ended(),
            before + 3,
            "a, then the other thread's b and a"
        );
    }
}
