//! `max-connections-per-ip`: open connections per client address, across
//! every reactor.
//!
//! A connection remembers a 32-bit keyed hash of its peer's address (not the
//! address: 16 bytes would push `Conn` past its two cache lines), so it can
//! be given back when the connection closes, even after a reset when the
//! peer address can no longer be read. Two addresses sharing a hash share a
//! count: with a random key per process an attacker cannot aim for that,
//! and the cost is only a slightly earlier 429 for them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Open connections per address hash.
///
/// The limit can change while connections are open (SIGHUP): a connection
/// admitted while it was off has key 0 and gives nothing back, so turning
/// it on or off never miscounts.
#[derive(Debug)]
pub struct PerIpConnections {
    /// 0: off (nothing is counted).
    max: AtomicU32,
    key: RandomState,
    open: Mutex<HashMap<u32, u32>>,
}

/// The hash a connection keeps; 0 means "not counted".
pub type IpKey = u32;

impl PerIpConnections {
    /// Counts with a limit of `max` per address (0: off).
    pub fn new(max: usize) -> PerIpConnections {
        PerIpConnections {
            max: AtomicU32::new(clamp(max)),
            key: RandomState::new(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A new limit for connections admitted from now on.
    pub fn set_limit(&self, max: usize) {
        self.max.store(clamp(max), Ordering::Relaxed);
    }

    /// Admits one more connection from `ip`, or refuses it (None) when the
    /// address is at its limit. Key 0 when the limit is off.
    pub fn admit(&self, ip: IpAddr) -> Option<IpKey> {
        let max = self.max.load(Ordering::Relaxed);
        if max == 0 {
            return Some(0);
        }
        let key = (self.key.hash_one(ip) as u32).max(1);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(key)
    }

    /// Gives back a connection admitted with `key`.
    pub fn release(&self, key: IpKey) {
        if key == 0 {
            return;
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
        let len = open.len();
        if open.capacity() > 1024 && len < open.capacity() / 8 {
            open.shrink_to(len * 2);
        }
    }

    /// Addresses with open connections (for tests).
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

fn clamp(max: usize) -> u32 {
    max.min(u32::MAX as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_address_and_release() {
        let p = PerIpConnections::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let k1 = p.admit(a).unwrap();
        let k2 = p.admit(a).unwrap();
        assert_eq!(k1, k2);
        assert!(p.admit(a).is_none());
        assert!(p.admit(b).is_some());
        p.release(k1);
        assert!(p.admit(a).is_some());
        p.release(k1);
        p.release(k1);
        assert_eq!(p.addresses(), 1);
        p.release(0);
    }
}
