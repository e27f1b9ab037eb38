//! The guest's descriptor numbers, and what each one is.
//!
//! wasmtime-wasi numbers the descriptors it makes (files, directories,
//! standard streams) itself, and has no sockets. Wasabi adds sockets beside
//! them, so the numbers the guest sees are Wasabi's: each is either one of
//! wasmtime-wasi's descriptors, under wasmtime-wasi's own number, or a
//! socket of this crate. Every import that takes or returns a descriptor
//! goes through this table ([`crate::shadow`]), so the two kinds can never
//! answer to the same number, and a socket can sit anywhere among files —
//! in particular right after the preopened directories, where preview-1
//! programs look for preopened listeners (as wazero numbers them).
//!
//! New numbers are the lowest free ones, as POSIX gives them.

use std::collections::{BTreeMap, BTreeSet};

use wasmtime_wasi::p1::types::Errno;

use crate::builtin::BuiltinFd;
use crate::socket::SocketFd;

/// What a guest descriptor number stands for.
pub(crate) enum Target {
    /// wasmtime-wasi's descriptor with this number.
    Wasi(u32),
    /// A socket.
    Socket(SocketFd),
    /// `/dev/null`, `/etc/hosts` or their made-up directories.
    Builtin(BuiltinFd),
}

/// The guest's descriptors.
pub(crate) struct FdTable {
    map: BTreeMap<u32, Target>,
    /// Numbers below `next` that are not in use.
    free: BTreeSet<u32>,
    next: u32,
    /// Socket descriptors now, and the most the guest may hold (sockets
    /// not yet bound or connected hold no host socket, so the socket cap
    /// alone would not bound them).
    sockets: usize,
    max_sockets: usize,
    /// The most files, directories and standard streams the guest may
    /// hold: the open-files cap, plus what it was given at start.
    max_files: usize,
}

impl FdTable {
    /// The table at start: wasmtime-wasi's first `wasi` descriptors
    /// (standard streams, then preopened directories) under their own
    /// numbers.
    pub(crate) fn new(wasi: u32, max_sockets: usize) -> FdTable {
        FdTable {
            map: (0..wasi).map(|fd| (fd, Target::Wasi(fd))).collect(),
            free: BTreeSet::new(),
            next: wasi,
            sockets: 0,
            max_sockets,
            max_files: usize::MAX,
        }
    }

    /// Caps the files and directories the guest may open at `cap` more than
    /// it holds now (what it was given: standard streams, preopens).
    pub(crate) fn cap_files(&mut self, cap: usize) {
        self.max_files = (self.map.len() - self.sockets).saturating_add(cap);
    }

    /// What `fd` is: `EBADF` when nothing.
    pub(crate) fn get(&self, fd: i32) -> Result<&Target, Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::Badf)?;
        self.map.get(&fd).ok_or(Errno::Badf)
    }

    /// wasmtime-wasi's number for `fd`, as the ABI passes it; `on_socket`
    /// when `fd` is a socket or a made-up file (the error the operation
    /// has on one, e.g. `ENOTDIR` for a path, `ESPIPE` for a seek), and
    /// `EACCES` for a made-up directory (nothing can be changed in it).
    pub(crate) fn wasi(&self, fd: i32, on_socket: Errno) -> Result<i32, Errno> {
        match self.get(fd)? {
            Target::Wasi(inner) => Ok(*inner as i32),
            Target::Socket(_) | Target::Builtin(BuiltinFd::File { .. }) => Err(on_socket),
            Target::Builtin(BuiltinFd::Dir { .. }) => Err(Errno::Acces),
        }
    }

    /// The made-up file or directory `fd`, if it is one.
    pub(crate) fn builtin(&mut self, fd: i32) -> Option<&mut BuiltinFd> {
        let fd = u32::try_from(fd).ok()?;
        match self.map.get_mut(&fd) {
            Some(Target::Builtin(b)) => Some(b),
            _ => None,
        }
    }

    /// The socket `fd`: `ENOTSOCK` for a file, `EBADF` for nothing.
    pub(crate) fn socket(&mut self, fd: i32) -> Result<&mut SocketFd, Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::Badf)?;
        match self.map.get_mut(&fd) {
            Some(Target::Socket(s)) => Ok(s),
            Some(Target::Wasi(_) | Target::Builtin(_)) => Err(Errno::Notsock),
            None => Err(Errno::Badf),
        }
    }

    /// Whether another file may be opened: `EMFILE` when the guest holds
    /// as many as it may.
    pub(crate) fn room_for_file(&self) -> Result<(), Errno> {
        if self.map.len() - self.sockets >= self.max_files {
            return Err(Errno::Mfile);
        }
        Ok(())
    }

    /// Whether another socket may be made: `EMFILE` when the guest holds
    /// as many as it may.
    pub(crate) fn room_for_socket(&self) -> Result<(), Errno> {
        if self.sockets >= self.max_sockets {
            return Err(Errno::Mfile);
        }
        Ok(())
    }

    /// Gives `target` the lowest free number.
    pub(crate) fn insert(&mut self, target: Target) -> Result<u32, Errno> {
        if matches!(target, Target::Socket(_)) {
            self.room_for_socket()?;
            self.sockets += 1;
        }
        let fd = match self.free.pop_first() {
            Some(fd) => fd,
            None => {
                let fd = self.next;
                self.next = fd.checked_add(1).ok_or(Errno::Mfile)?;
                fd
            }
        };
        self.map.insert(fd, target);
        Ok(fd)
    }

    /// Takes `fd` out of the table; its number is free again.
    pub(crate) fn remove(&mut self, fd: i32) -> Result<Target, Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::Badf)?;
        let target = self.map.remove(&fd).ok_or(Errno::Badf)?;
        if matches!(target, Target::Socket(_)) {
            self.sockets -= 1;
        }
        self.free.insert(fd);
        Ok(target)
    }

    /// Puts `target` under `fd`, a number just taken out with
    /// [`remove`](Self::remove) (`fd_renumber`).
    pub(crate) fn put(&mut self, fd: i32, target: Target) -> Result<(), Errno> {
        let fd = u32::try_from(fd).map_err(|_| Errno::Badf)?;
        if !self.free.remove(&fd) {
            return Err(Errno::Badf);
        }
        if matches!(target, Target::Socket(_)) {
            self.sockets += 1;
        }
        self.map.insert(fd, target);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_the_lowest_free_and_sockets_are_capped() {
        let mut t = FdTable::new(4, 2);
        t.cap_files(1);
        let a = t.insert(Target::Wasi(4)).unwrap();
        assert_eq!(a, 4);
        assert!(matches!(t.remove(3), Ok(Target::Wasi(3))));
        assert_eq!(t.insert(Target::Wasi(9)).unwrap(), 3);
        assert_eq!(t.get(3).map(|_| ()), Ok(()));
        assert_eq!(t.get(-1).map(|_| ()), Err(Errno::Badf));
        assert_eq!(t.wasi(3, Errno::Notdir), Ok(9));
        assert_eq!(t.socket(3).map(|_| ()), Err(Errno::Notsock));
        // 4 given + 1 opened: the open-files cap of 1 is reached.
        assert_eq!(t.room_for_file(), Err(Errno::Mfile));
        t.remove(4).unwrap();
        assert_eq!(t.room_for_file(), Ok(()));
    }
}
