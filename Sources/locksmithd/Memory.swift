// Giving back the memory of code the waiting daemon does not run.
import CGlibc
import Glibc

/// Once the daemon settles into waiting for an update, which may take days, the code it ran to
/// start is not needed until one arrives: ask the kernel to reclaim the pages of its file
/// mappings (program and libraries; MADV_PAGEOUT, Linux 5.4+, elsewhere nothing happens).
/// They are read back from their files on the next use. The kernel leaves pages that other
/// processes map (libc, usually) where they are; of code, the daemon drops its own mappings.
func pageOutOwnCode() {
    guard let maps = readWholeFile("/proc/self/maps", limit: 1 << 20) else { return }
    let madvPageout: Int32 = 21  // MADV_PAGEOUT
    // The ranges first, then the madvise calls in a loop that calls nothing else: the parsing runs
    // the Swift runtime's string code in liblocksmith, and running it after that mapping was paged
    // out read about 1 MB of it back at once (large folios and readahead). A second pass pages out
    // what the first pass's own loop read back; what stays is what the way back into the wait uses.
    var ranges: [(start: UInt, length: Int, code: Bool)] = []
    for line in String(decoding: maps, as: UTF8.self).split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        // Private file mappings that can be read: code, read-only data, and writable data, of
        // which the kernel drops only the pages never written (they are still the file's); the
        // written ones stay (without swap). Inaccessible (---p) reservations are left alone.
        guard fields.count >= 6, fields[5].hasPrefix("/"), ["r-xp", "r--p", "rw-p"].contains(fields[1]) else { continue }
        let range = fields[0].split(separator: "-")
        guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
        ranges.append((start, Int(end - start), fields[1] == "r-xp"))
    }
    ranges.withUnsafeBufferPointer { all in
        for _ in 0..<2 {
            for r in all {
                _ = madvise(UnsafeMutableRawPointer(bitPattern: r.start), r.length, madvPageout)
                // Code that other processes map too (libc, libm, libsystemd) stays in memory for
                // them; this process only lets go of its mappings of it (the next use maps the
                // page again from the page cache, a minor fault). Only code (r-xp), which is never
                // written: on data, MADV_DONTNEED would throw away what was written (relocations).
                if r.code { _ = madvise(UnsafeMutableRawPointer(bitPattern: r.start), r.length, MADV_DONTNEED) }
            }
        }
    }
}

/// A whole file of at most `limit` bytes, or nil.
func readWholeFile(_ path: String, limit: Int, followLinks: Bool = true) -> [UInt8]? {
    var data: UnsafeMutablePointer<UInt8>?
    let n = cglibc_read_file(path, limit, followLinks ? 0 : 1, &data)
    guard n >= 0 else { return nil }
    defer { free(data) }
    return Array(UnsafeBufferPointer(start: data, count: n))
}
