//! State that belongs to one process.
//!
//! After `fork()` the child has a copy of every session, with the parent's
//! sockets and the parent's locks in whatever state they were at that
//! instant: a connection in the middle of a request, a watch stream, a
//! mutex held by a thread the child does not have. The child must never
//! read, write or shut down those sockets, nor wait on those locks. So
//! everything stateful that a call touches (connections, parked watch
//! streams, the login state) lives in a [`PerProcess`]: on its first use
//! in a new process, the child makes its own and forgets the inherited
//! one — never used and never dropped, since dropping it could write to a
//! socket the parent is still using. The swap itself is lock-free, so a
//! lock held at the moment of the fork cannot stop it.

use std::any::Any;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

/// A `T` made by and for the process that uses it.
pub struct PerProcess<T: Send + Sync + 'static> {
    current: ArcSwapOption<Owned<T>>,
}

/// A value and the process it belongs to.
pub struct Owned<T> {
    pid: u32,
    value: T,
}

impl<T> std::ops::Deref for Owned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Send + Sync + 'static> PerProcess<T> {
    /// Holds `value`, which belongs to this process.
    pub fn new(value: T) -> PerProcess<T> {
        PerProcess {
            current: ArcSwapOption::from_pointee(Owned {
                pid: std::process::id(),
                value,
            }),
        }
    }

    /// This process's value. In a child forked after the current value
    /// was made, `fresh` makes the child's own; it is shown the inherited
    /// value to copy what is safe to share (it must not lock or do I/O on
    /// it).
    pub fn get(&self, fresh: impl FnOnce(Option<&T>) -> T) -> Arc<Owned<T>> {
        let pid = std::process::id();
        let current = self.current.load_full();
        if let Some(owned) = &current {
            if owned.pid == pid {
                return owned.clone();
            }
        }
        let mine = Arc::new(Owned {
            pid,
            value: fresh(current.as_deref().map(|o| &o.value)),
        });
        let before = self.current.compare_and_swap(&current, Some(mine.clone()));
        let won = match (&*before, &current) {
            (Some(b), Some(c)) => Arc::ptr_eq(b, c),
            (None, None) => true,
            _ => false,
        };
        if !won {
            // Another thread of this process got there first: use its.
            drop(mine);
            return self
                .current
                .load_full()
                .filter(|o| o.pid == pid)
                .expect("state installed by another thread of this process");
        }
        keep_forever(current);
        mine
    }
}

impl<T: Send + Sync + 'static> Drop for PerProcess<T> {
    fn drop(&mut self) {
        if let Some(owned) = self.current.swap(None) {
            if owned.pid != std::process::id() {
                keep_forever(owned);
            }
        }
    }
}

/// Keeps an inherited value alive for the rest of the process: its drop
/// would touch the parent's sockets or join the parent's threads. It is
/// kept where a leak checker can still see it; if that list is busy (its
/// lock held by a thread that does not exist here), it is just forgotten.
fn keep_forever<V: Send + 'static>(value: V) {
    static INHERITED: Mutex<Vec<Box<dyn Any + Send>>> = Mutex::new(Vec::new());
    match INHERITED.try_lock() {
        Ok(mut kept) => kept.push(Box::new(value)),
        Err(_) => std::mem::forget(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_process_same_value() {
        let p = PerProcess::new(7);
        let a = p.get(|_| unreachable!());
        let b = p.get(|_| unreachable!());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(**a, 7);
    }
}
