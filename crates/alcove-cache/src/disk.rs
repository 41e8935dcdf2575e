//! A disk tier: pages in fixed-size slots of one preallocated-by-use ("slab") file per cache
//! folder, an in-memory index rebuilt from the slot headers at start, and a writer thread fed by
//! a bounded queue.
//!
//! Layout of `alcove-pages.slab`:
//!
//! ```text
//! [superblock, 4 KiB] [slot 0] [slot 1] ...            slot = 4 KiB header block + page_size,
//!                                                              rounded up to 4 KiB
//! header block: ... unused ... [encoded key][trailer, 32 bytes]   (right-aligned, so that the
//!               header and the page are one contiguous range: one preadv per page)
//! trailer: magic u64, write sequence u64, page length u32, key length u32, page crc32,
//!          header crc32 (key + the trailer before it)
//! ```
//!
//! Why slots in one file rather than a file per page: every page fits every slot, so allocation
//! is a free list and eviction frees exactly what the next page needs; the file's size is bounded
//! by `superblock + slots × slot size`, which never exceeds the configured size; a read is one
//! `preadv` on a file already open (no open/close per page); and a restart reads one 4 KiB header
//! per slot in file order rather than opening thousands of files.
//!
//! Trust: nothing read from the file is trusted. A header must carry its magic, lengths within
//! bounds and a matching crc to be indexed at start; a page must match its key, sequence number
//! and data crc to be returned. Anything else is dropped (and its header zeroed) and reported as a
//! miss. I/O errors are counted, logged once per failing episode, and the tier stops taking writes
//! for [`RETRY_AFTER`]; callers never see them.
//!
//! This module may not know about the memory tier, single-flight or the caller's fetch.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::PageStoreError;
use crate::policy::S3Fifo;
use crate::stats::{TierCounters, TierStats};
use crate::PageKey;

pub(crate) const FILE_NAME: &str = "alcove-pages.slab";
const SUPERBLOCK_SIZE: u64 = 4096;
const HEADER_BLOCK: u64 = 4096;
const TRAILER_LEN: usize = 32;
/// Longest encoded key a header block holds; pages of longer keys are not cached on disk.
const MAX_KEY_LEN: usize = HEADER_BLOCK as usize - TRAILER_LEN;
const SLAB_MAGIC: &[u8; 8] = b"ALCVSLAB";
const PAGE_MAGIC: u64 = u64::from_le_bytes(*b"ALCVPAGE");
const FORMAT: u32 = 1;
/// Threads reading slot headers at start (for folders of 256 slots or more).
const RECOVERY_THREADS: u32 = 4;
/// How long a failing tier takes no writes before it is tried again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where a page lives in the slab and which write put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    index: u32,
    /// The write's sequence number: tells this residency apart from a later page in the same
    /// slot, and orders the index rebuilt at start.
    seq: u64,
    header_len: u32,
    data_len: u32,
}

struct State {
    policy: S3Fifo<Slot>,
    /// Slots holding nothing, lowest first at start so that the file grows from the front.
    free: VecDeque<u32>,
    next_seq: u64,
    /// While failing: when writes are tried again.
    failing_until: Option<Instant>,
    corruption_logged: bool,
}

pub(crate) struct DiskTier {
    dir: PathBuf,
    /// `None` when the folder could not be set up at start: the tier then holds nothing.
    file: Option<File>,
    configured_size: u64,
    page_size: u64,
    slot_size: u64,
    slots: u32,
    state: Mutex<State>,
    pub counters: TierCounters,
    /// Test hook: every read and write fails with EIO while set.
    #[cfg(test)]
    pub fail_io: std::sync::atomic::AtomicBool,
}

/// What `open` learned, for the caller's one log line.
pub(crate) struct Opened {
    pub tier: DiskTier,
    pub recovered: usize,
}

impl DiskTier {
    pub fn slot_size(page_size: u64) -> u64 {
        (HEADER_BLOCK + page_size).div_ceil(4096) * 4096
    }

    /// Opens (creating or recovering) the tier in `dir`. Only a folder locked by another store is
    /// an error; a folder that cannot be used gives a tier that holds nothing, with one log line.
    pub fn open(dir: &Path, size: u64, page_size: u64) -> Result<Opened, PageStoreError> {
        let slot_size = Self::slot_size(page_size);
        let slots = (size.saturating_sub(SUPERBLOCK_SIZE) / slot_size).min(u32::MAX as u64) as u32;
        let mut tier = DiskTier {
            dir: dir.to_path_buf(),
            file: None,
            configured_size: size,
            page_size,
            slot_size,
            slots,
            state: Mutex::new(State {
                policy: S3Fifo::new(slots as u64),
                free: VecDeque::new(),
                next_seq: 0,
                failing_until: None,
                corruption_logged: false,
            }),
            counters: TierCounters::default(),
            #[cfg(test)]
            fail_io: std::sync::atomic::AtomicBool::new(false),
        };
        if slots == 0 {
            tracing::warn!(dir = %dir.display(), size, slot_size, "cache folder too small for one page; not used");
            return Ok(Opened { tier, recovered: 0 });
        }
        let file = match Self::open_file(dir) {
            Ok(file) => file,
            Err(OpenError::Locked) => return Err(PageStoreError::DirInUse(dir.to_path_buf())),
            Err(OpenError::Io(e)) => {
                tracing::error!(dir = %dir.display(), error = %e, "cache folder unusable; pages are not cached there");
                TierCounters::add(&tier.counters.errors, 1);
                return Ok(Opened { tier, recovered: 0 });
            }
        };
        let recovered = match tier.recover(&file) {
            Ok(recovered) => recovered,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cache folder unreadable at start; pages are not cached there");
                TierCounters::add(&tier.counters.errors, 1);
                return Ok(Opened { tier, recovered: 0 });
            }
        };
        tier.file = Some(file);
        Ok(Opened { tier, recovered })
    }

    fn open_file(dir: &Path) -> Result<File, OpenError> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(FILE_NAME))?;
        // Two stores writing one slab would hand each other's slots out: refuse the second.
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(TryLockError::WouldBlock) => Err(OpenError::Locked),
            Err(TryLockError::Error(e)) => Err(e.into()),
        }
    }

    fn superblock(&self) -> [u8; SUPERBLOCK_SIZE as usize] {
        let mut block = [0u8; SUPERBLOCK_SIZE as usize];
        block[..8].copy_from_slice(SLAB_MAGIC);
        block[8..12].copy_from_slice(&FORMAT.to_le_bytes());
        block[16..24].copy_from_slice(&self.page_size.to_le_bytes());
        block[24..32].copy_from_slice(&self.slot_size.to_le_bytes());
        block[32..40].copy_from_slice(&HEADER_BLOCK.to_le_bytes());
        let crc = crc32fast::hash(&block[..40]);
        block[40..44].copy_from_slice(&crc.to_le_bytes());
        block
    }

    /// Rebuilds the index from the slot headers, or starts the file afresh when it was written
    /// with another layout or page size (its pages could not be served anyway).
    fn recover(&mut self, file: &File) -> io::Result<usize> {
        let superblock = self.superblock();
        let mut len = file.metadata()?.len();
        let mut found = [0u8; SUPERBLOCK_SIZE as usize];
        let compatible = len >= SUPERBLOCK_SIZE && file.read_exact_at(&mut found, 0).is_ok() && found == superblock;
        if !compatible {
            if len > 0 {
                tracing::info!(dir = %self.dir.display(), "cache file has another layout or page size; starting it afresh");
            }
            file.set_len(0)?;
            file.write_all_at(&superblock, 0)?;
            len = SUPERBLOCK_SIZE;
        }
        // A smaller configured size than last time: the slots past the end are let go.
        let end = SUPERBLOCK_SIZE + self.slots as u64 * self.slot_size;
        if len > end {
            file.set_len(end)?;
            len = end;
        }
        // The headers are read by a few threads over contiguous ranges of slots: a cold disk
        // answers several outstanding reads faster than one at a time.
        let readable = (0..self.slots).take_while(|i| self.slot_offset(*i) + HEADER_BLOCK <= len).count() as u32;
        let threads = if readable >= 256 { RECOVERY_THREADS } else { 1 };
        let per_thread = readable.div_ceil(threads);
        let ranges: Vec<_> = (0..threads).map(|t| t * per_thread..((t + 1) * per_thread).min(readable)).collect();
        let this = &*self;
        let scanned: Vec<io::Result<Vec<(PageKey, Slot)>>> = std::thread::scope(|scope| {
            let scans: Vec<_> =
                ranges.into_iter().map(|range| scope.spawn(move || this.scan(file, range, len))).collect();
            scans.into_iter().map(|scan| scan.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        });
        let mut found = Vec::new();
        for part in scanned {
            found.extend(part?);
        }
        let mut used = vec![false; self.slots as usize];
        // Oldest first, so that the FIFO order survives; a key found twice keeps its newest copy.
        found.sort_by_key(|(_, slot)| slot.seq);
        let state = self.state.get_mut();
        let mut recovered = 0;
        for (key, slot) in found {
            state.next_seq = state.next_seq.max(slot.seq + 1);
            if let Some(older) = state.policy.remove(&key) {
                used[older.index as usize] = false;
                recovered -= 1;
            }
            used[slot.index as usize] = true;
            state.policy.insert_recovered(key, slot, 1);
            recovered += 1;
        }
        state.free = (0..self.slots).filter(|i| !used[*i as usize]).collect();
        Ok(recovered)
    }

    /// The valid page headers of slots `range`.
    fn scan(&self, file: &File, range: std::ops::Range<u32>, len: u64) -> io::Result<Vec<(PageKey, Slot)>> {
        let mut found = Vec::new();
        let mut block = vec![0u8; HEADER_BLOCK as usize];
        for index in range {
            let offset = self.slot_offset(index);
            file.read_exact_at(&mut block, offset)?;
            if let Some((key, slot)) = parse_header_block(&block, index, self.page_size) {
                // A page cut short by a truncated file is not indexed.
                if offset + HEADER_BLOCK + slot.data_len as u64 <= len {
                    found.push((key, slot));
                }
            }
        }
        Ok(found)
    }

    fn slot_offset(&self, index: u32) -> u64 {
        SUPERBLOCK_SIZE + index as u64 * self.slot_size
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this tier can take pages at all (it opened, and has room for one).
    pub fn usable(&self) -> bool {
        self.file.is_some()
    }

    pub fn weight(&self) -> u64 {
        self.slots as u64
    }

    pub fn is_failing(&self) -> bool {
        self.state.lock().failing_until.is_some_and(|until| Instant::now() < until)
    }

    pub fn contains(&self, key: &PageKey) -> bool {
        self.state.lock().policy.contains(key)
    }

    /// Reads `key`'s page, checking it; blocking (call from a blocking thread).
    pub fn read(&self, key: &PageKey) -> Option<Bytes> {
        let file = self.file.as_ref()?;
        let slot = *self.state.lock().policy.get(key)?;
        let expected = key.encode()?;
        let mut header = vec![0u8; slot.header_len as usize];
        let mut data = vec![0u8; slot.data_len as usize];
        let offset = self.slot_offset(slot.index) + HEADER_BLOCK - slot.header_len as u64;
        match self.read_at(file, &mut header, &mut data, offset) {
            Ok(()) if page_is_intact(&header, &expected, slot, &data) => {
                self.counters.hit(data.len());
                Some(Bytes::from(data))
            }
            Ok(()) => {
                self.corrupt(key, slot, "failed its checksum");
                None
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.corrupt(key, slot, "is cut short");
                None
            }
            Err(e) => {
                self.failed("read", &e);
                self.release(key, slot);
                None
            }
        }
    }

    fn read_at(&self, file: &File, header: &mut [u8], data: &mut [u8], offset: u64) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_io.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(5));
        }
        read_exact_vectored_at(file, header, data, offset)
    }

    fn write_at(&self, file: &File, header: &[u8], data: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_io.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(io::Error::from_raw_os_error(5));
        }
        write_all_vectored_at(file, header, data, offset)
    }

    /// Drops a page that did not check out, zeroing its header so that a restart does not index
    /// it again. The first one in a tier is logged; the rest are counted. A page whose slot a
    /// writer reused while it was being read is no corruption: it was evicted already.
    fn corrupt(&self, key: &PageKey, slot: Slot, what: &str) {
        if !self.release(key, slot) {
            return;
        }
        TierCounters::add(&self.counters.corrupt_pages, 1);
        let first = !std::mem::replace(&mut self.state.lock().corruption_logged, true);
        if first {
            tracing::warn!(dir = %self.dir.display(), page = %key, "cached page {what}; dropped (further ones are only counted)");
        }
    }

    /// Takes `key` out of the index if it is still the page in `slot`, and frees the slot once its
    /// header is zeroed. (A slot that a writer reused meanwhile belongs to the writer now.)
    fn release(&self, key: &PageKey, slot: Slot) -> bool {
        {
            let mut state = self.state.lock();
            if state.policy.peek(key) != Some(&slot) {
                return false;
            }
            state.policy.remove(key);
        }
        self.erase_and_free(&[slot.index]);
        true
    }

    /// Zeroes the trailers of `slots` (no longer indexed, not yet free) and hands them to the free
    /// list: the zeroing first, so that no writer can be using the slot while it happens.
    fn erase_and_free(&self, slots: &[u32]) {
        if let Some(file) = &self.file {
            for &index in slots {
                let offset = self.slot_offset(index) + HEADER_BLOCK - TRAILER_LEN as u64;
                if let Err(e) = file.write_all_at(&[0u8; TRAILER_LEN], offset) {
                    // The page may come back after a restart; it is still a correct page.
                    self.failed("erase", &e);
                }
            }
        }
        self.state.lock().free.extend(slots);
    }

    /// Counts an I/O error and logs it if it starts a failing episode; the tier then takes no
    /// writes until [`RETRY_AFTER`] has passed.
    fn failed(&self, op: &str, error: &io::Error) {
        TierCounters::add(&self.counters.errors, 1);
        let mut state = self.state.lock();
        let first = state.failing_until.is_none();
        state.failing_until = Some(Instant::now() + RETRY_AFTER);
        drop(state);
        if first {
            tracing::warn!(
                dir = %self.dir.display(), op, error = %error,
                "cache disk failing; pages are not cached there until it recovers (retried every {}s)",
                RETRY_AFTER.as_secs()
            );
        }
    }

    /// Writes `page` under `key` unless it is already here; blocking (the writer thread's job).
    pub fn write(&self, key: PageKey, page: &Bytes) {
        let Some(file) = &self.file else { return };
        let encoded = match key.encode() {
            Some(encoded) if encoded.len() <= MAX_KEY_LEN && page.len() as u64 <= self.page_size => encoded,
            _ => return,
        };
        let (index, seq) = {
            let mut state = self.state.lock();
            if state.failing_until.is_some_and(|until| Instant::now() < until) {
                drop(state);
                TierCounters::add(&self.counters.dropped_writes, 1);
                return;
            }
            if state.policy.contains(&key) {
                return;
            }
            let index = match state.free.pop_front() {
                Some(index) => index,
                None => match state.policy.evict() {
                    Some((_, victim)) => {
                        TierCounters::add(&self.counters.evictions, 1);
                        victim.index
                    }
                    None => return,
                },
            };
            let seq = state.next_seq;
            state.next_seq += 1;
            (index, seq)
        };
        let header = encode_header(&encoded, seq, page);
        let offset = self.slot_offset(index) + HEADER_BLOCK - header.len() as u64;
        match self.write_at(file, &header, page, offset) {
            Ok(()) => {
                let slot = Slot { index, seq, header_len: header.len() as u32, data_len: page.len() as u32 };
                let mut state = self.state.lock();
                let recovered = state.failing_until.take().is_some();
                // The slot was taken out of the free list, so this never evicts.
                let evicted = state.policy.insert(key, slot, 1);
                drop(state);
                debug_assert!(evicted.is_empty());
                TierCounters::add(&self.counters.insertions, 1);
                if recovered {
                    tracing::info!(dir = %self.dir.display(), "cache disk writable again");
                }
            }
            Err(e) => {
                self.state.lock().free.push_front(index);
                self.failed("write", &e);
            }
        }
    }

    /// Removes these pages; blocking. Returns the positions in `keys` of those that were here.
    pub fn remove(&self, keys: &[PageKey]) -> Vec<usize> {
        let mut removed = Vec::new();
        let mut slots = Vec::new();
        {
            let mut state = self.state.lock();
            for (at, key) in keys.iter().enumerate() {
                if let Some(slot) = state.policy.remove(key) {
                    removed.push(at);
                    slots.push(slot.index);
                }
            }
        }
        self.erase_and_free(&slots);
        TierCounters::add(&self.counters.removals, slots.len() as u64);
        removed
    }

    /// Removes every page whose key matches; blocking, and a scan of the whole index.
    pub fn remove_where(&self, matches: impl FnMut(&PageKey) -> bool) -> Vec<Arc<PageKey>> {
        let removed = self.state.lock().policy.remove_where(matches);
        let slots: Vec<u32> = removed.iter().map(|(_, slot)| slot.index).collect();
        self.erase_and_free(&slots);
        TierCounters::add(&self.counters.removals, slots.len() as u64);
        removed.into_iter().map(|(key, _)| key).collect()
    }

    pub fn stats(&self) -> TierStats {
        let mut stats =
            TierStats { path: Some(self.dir.clone()), capacity_bytes: self.configured_size, ..Default::default() };
        {
            let state = self.state.lock();
            stats.pages = state.policy.len() as u64;
            if self.file.is_some() {
                let busy = self.slots as u64 - state.free.len() as u64;
                stats.used_bytes = SUPERBLOCK_SIZE + busy * self.slot_size;
            }
            stats.failing = self.file.is_none() || state.failing_until.is_some_and(|until| Instant::now() < until);
        }
        self.counters.read_into(&mut stats);
        stats
    }

    /// Test hook: where `key`'s page bytes start in the slab file.
    #[cfg(test)]
    pub fn data_offset(&self, key: &PageKey) -> Option<u64> {
        let slot = *self.state.lock().policy.peek(key)?;
        Some(self.slot_offset(slot.index) + HEADER_BLOCK)
    }
}

enum OpenError {
    Locked,
    Io(io::Error),
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

fn encode_header(key: &[u8], seq: u64, page: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(key.len() + TRAILER_LEN);
    header.extend_from_slice(key);
    header.extend_from_slice(&PAGE_MAGIC.to_le_bytes());
    header.extend_from_slice(&seq.to_le_bytes());
    header.extend_from_slice(&(page.len() as u32).to_le_bytes());
    header.extend_from_slice(&(key.len() as u32).to_le_bytes());
    header.extend_from_slice(&crc32fast::hash(page).to_le_bytes());
    let crc = crc32fast::hash(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header
}

/// The trailer's fields, read from untrusted bytes.
struct Trailer {
    magic: u64,
    seq: u64,
    data_len: u32,
    key_len: u32,
    data_crc: u32,
    header_crc: u32,
}

fn parse_trailer(trailer: &[u8]) -> Option<Trailer> {
    let field = |at: usize, len: usize| trailer.get(at..at + len);
    let u64_at = |at| field(at, 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let u32_at = |at| field(at, 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    Some(Trailer {
        magic: u64_at(0)?,
        seq: u64_at(8)?,
        data_len: u32_at(16)?,
        key_len: u32_at(20)?,
        data_crc: u32_at(24)?,
        header_crc: u32_at(28)?,
    })
}

/// Checks a header's own fields (not the page's crc) and returns the key and slot it describes.
/// `header` is the key followed by the trailer.
fn check_header(header: &[u8], page_size: u64) -> Option<(Trailer, &[u8])> {
    let split = header.len().checked_sub(TRAILER_LEN)?;
    let (key, trailer_bytes) = header.split_at(split);
    let trailer = parse_trailer(trailer_bytes)?;
    let ok = trailer.magic == PAGE_MAGIC
        && trailer.key_len as usize == key.len()
        && trailer.data_len as u64 <= page_size
        && crc32fast::hash(&header[..header.len() - 4]) == trailer.header_crc;
    ok.then_some((trailer, key))
}

fn parse_header_block(block: &[u8], index: u32, page_size: u64) -> Option<(PageKey, Slot)> {
    let trailer = parse_trailer(block.get(block.len().checked_sub(TRAILER_LEN)?..)?)?;
    if trailer.magic != PAGE_MAGIC || trailer.key_len as usize > MAX_KEY_LEN {
        return None;
    }
    let header_len = trailer.key_len as usize + TRAILER_LEN;
    let header = block.get(block.len() - header_len..)?;
    let (trailer, key) = check_header(header, page_size)?;
    let key = PageKey::decode(key)?;
    Some((key, Slot { index, seq: trailer.seq, header_len: header_len as u32, data_len: trailer.data_len }))
}

fn page_is_intact(header: &[u8], expected_key: &[u8], slot: Slot, data: &[u8]) -> bool {
    let Some((trailer, key)) = check_header(header, u64::MAX) else { return false };
    key == expected_key
        && trailer.seq == slot.seq
        && trailer.data_len as usize == data.len()
        && crc32fast::hash(data) == trailer.data_crc
}

/// One `preadv` for header and page; a short read (end of file, or a signal) is finished with
/// plain positional reads, which report a truncated file as `UnexpectedEof`.
fn read_exact_vectored_at(file: &File, header: &mut [u8], data: &mut [u8], offset: u64) -> io::Result<()> {
    let done = loop {
        match rustix::io::preadv(file, &mut [IoSliceMut::new(header), IoSliceMut::new(data)], offset) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let header_len = header.len();
    if done < header_len {
        file.read_exact_at(&mut header[done..], offset + done as u64)?;
        file.read_exact_at(data, offset + header_len as u64)?;
    } else if done < header_len + data.len() {
        file.read_exact_at(&mut data[done - header_len..], offset + done as u64)?;
    }
    Ok(())
}

/// One `pwritev` for header and page, finished with plain positional writes if short.
fn write_all_vectored_at(file: &File, header: &[u8], data: &[u8], offset: u64) -> io::Result<()> {
    let done = loop {
        match rustix::io::pwritev(file, &[IoSlice::new(header), IoSlice::new(data)], offset) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let header_len = header.len();
    if done < header_len {
        file.write_all_at(&header[done..], offset + done as u64)?;
        file.write_all_at(data, offset + header_len as u64)?;
    } else if done < header_len + data.len() {
        file.write_all_at(&data[done - header_len..], offset + done as u64)?;
    }
    Ok(())
}

enum WriteJob {
    Page(PageKey, Bytes),
    /// Answered once every job queued before it is done.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The bounded queue in front of a tier's writer thread. Inserting never waits: a full queue
/// drops the page (it simply is not cached on disk).
pub(crate) struct Writer {
    queue: SyncSender<WriteJob>,
}

impl Writer {
    /// Starts the writer thread. It holds the tier weakly, so that dropping the store closes the
    /// file (and releases its lock) as soon as the current write is done.
    pub fn start(tier: &Arc<DiskTier>, queue_len: usize) -> io::Result<Writer> {
        let (queue, jobs) = mpsc::sync_channel(queue_len);
        let weak = Arc::downgrade(tier);
        std::thread::Builder::new().name("alcove-page-writer".into()).spawn(move || write_loop(weak, jobs))?;
        Ok(Writer { queue })
    }

    pub fn submit(&self, tier: &DiskTier, key: PageKey, page: Bytes) {
        match self.queue.try_send(WriteJob::Page(key, page)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                TierCounters::add(&tier.counters.dropped_writes, 1);
            }
        }
    }

    /// Waits until the pages queued so far are written (or given up).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        // The queue may be full: wait for room on a blocking thread, not on the runtime.
        let sent = tokio::task::spawn_blocking(move || queue.send(WriteJob::Flush(done)).is_ok()).await;
        if matches!(sent, Ok(true)) {
            let _ = wait.await;
        }
    }
}

fn write_loop(tier: Weak<DiskTier>, jobs: Receiver<WriteJob>) {
    while let Ok(job) = jobs.recv() {
        match job {
            WriteJob::Page(key, page) => match tier.upgrade() {
                Some(tier) => tier.write(key, &page),
                None => return,
            },
            WriteJob::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}
