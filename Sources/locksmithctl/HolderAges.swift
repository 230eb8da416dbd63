// How long each holder has held its slot: `status --ages`, the holder_ages of `status --json`,
// and `unlock --older-than`. The ages come from the holder records this library's clients write
// beside the semaphore; a holder without one (it locked with the original) is "unknown".
import Glibc
import Locksmith

/// A holder of the semaphore with its record, if one was written for it (`revision`: the
/// record's, which tells this holding from a later one under the same id).
struct HolderAge {
    let id: String
    let record: (since: Int64, host: String, revision: Int64)?

    /// Seconds held at `now`, or nil if unknown (never negative: clocks differ between hosts).
    func seconds(at now: Int64) -> Int64? { record.map { max(now - $0.since, 0) } }
}

/// The holders in the document's order, each with its record.
func holderAges(_ document: SemaphoreDocument, _ client: Client) throws -> [HolderAge] {
    holderAges(document, records: try client.holderRecords())
}

/// The holders in the document's order, each with its record among `records`.
func holderAges(_ document: SemaphoreDocument, records: [Client.Record]) -> [HolderAge] {
    var byID: [String: (since: Int64, host: String, revision: Int64)] = [:]
    for record in records { byID[record.id] = (record.since, record.host, record.revision) }
    return document.holders.map { HolderAge(id: $0, record: byID[$0]) }
}

func currentTime() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec)
}

/// "1h2m3s".
func heldFor(_ seconds: Int64) -> String { Library.formatDuration(seconds * 1_000_000_000) }

/// A time in the local time zone, for people: "Sun 2026-11-29 10:35 UTC".
func localTime(_ t: Int64) -> String { Library.formatTime(t) }

/// The holder_ages member of `status --json`.
func holderAgesJSON(_ ages: [HolderAge], now: Int64) -> String {
    "[" + ages.map { age in
        let record = age.record
        return "{\"id\":\(Library.jsonQuoted(age.id)),\"since\":\(record.map { "\($0.since)" } ?? "null"),"
            + "\"held_seconds\":\(age.seconds(at: now).map { "\($0)" } ?? "null"),"
            + "\"host\":\(record.map { Library.jsonQuoted($0.host) } ?? "null")}"
    }.joined(separator: ",") + "]"
}

/// The table of `status --ages`, after the original's "Available" and "Max" lines.
func holderAgesTable(_ ages: [HolderAge], now: Int64) -> String {
    guard !ages.isEmpty else { return "" }
    var rows = [["MACHINE ID", "HELD FOR", "SINCE", "HOST"]]
    for age in ages {
        // (The library refuses ids and hosts with control characters: they print as they are.)
        let id = age.id
        guard let record = age.record, let seconds = age.seconds(at: now) else {
            rows.append([id, "unknown", "-", "-"])
            continue
        }
        rows.append([id, heldFor(seconds), localTime(record.since), record.host.isEmpty ? "-" : record.host])
    }
    let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return "\n" + rows.map { row in
        (0..<3).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count + 2) }.joined() + row[3] + "\n"
    }.joined()
}

/// The queue member of `status --json`: the waiters in order.
func queueJSON(_ waiters: [Client.Record], now: Int64) -> String {
    "[" + waiters.map { w in
        "{\"id\":\(Library.jsonQuoted(w.id)),\"since\":\(w.since),\"waited_seconds\":\(max(now - w.since, 0)),\"host\":\(Library.jsonQuoted(w.host))}"
    }.joined(separator: ",") + "]"
}

/// Why waiters skip a queue entry, as `status --json` names it.
private func ignoredReason(_ entry: Client.Record, api: String?) -> String {
    entry.ignored == Client.Record.unreadable ? "unreadable" : api == "v2" ? "no-ttl" : "no-lease"
}

/// The queue_ignored member of `status --json`: the entries waiters skip, in queue order (what
/// cannot be read of one is null).
func ignoredQueueJSON(_ entries: [Client.Record], api: String?, now: Int64) -> String {
    "[" + entries.map { e in
        let readable = e.ignored != Client.Record.unreadable
        func field(_ value: String) -> String { readable ? value : "null" }
        return "{\"key\":\(Library.jsonQuoted(e.key)),\"id\":\(field(Library.jsonQuoted(e.id))),\"since\":\(field("\(e.since)")),"
            + "\"waited_seconds\":\(field("\(max(now - e.since, 0))")),\"host\":\(field(Library.jsonQuoted(e.host))),"
            + "\"reason\":\(Library.jsonQuoted(ignoredReason(e, api: api)))}"
    }.joined(separator: ",") + "]"
}

/// The table of `status --queue`: the entries in order, the waiters numbered with how long each
/// has waited, and the entries waiters skip marked with why.
func queueTable(_ entries: [Client.Record], api: String?, now: Int64) -> String {
    guard !entries.isEmpty else { return "\nNo machine is waiting for a slot.\n" }
    var rows = [["IN LINE", "MACHINE ID", "WAITED", "SINCE", "HOST", ""]]
    var place = 0
    for e in entries {
        let host = e.host.isEmpty ? "-" : e.host
        switch e.ignored {
        case 0:
            place += 1
            rows.append(["\(place)", e.id, heldFor(max(now - e.since, 0)), localTime(e.since), host, ""])
        case Client.Record.unreadable:
            rows.append(["-", "?", "-", "-", "-", "(unreadable entry \(shownKey(e.key)): ignored by waiters)"])
        default:
            let never = ignoredReason(e, api: api) == "no-ttl" ? "no TTL, or one over 1h" : "no lease"
            rows.append(["-", e.id, heldFor(max(now - e.since, 0)), localTime(e.since), host, "(\(never): ignored by waiters)"])
        }
    }
    // The last column is not padded (the notes' column only where there are notes).
    let last = rows.contains { !$0[5].isEmpty } ? 5 : 4
    let widths = (0..<last).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return "\n" + rows.map { row in
        let line = (0..<last).map { row[$0] + String(repeating: " ", count: widths[$0] - row[$0].count + 2) }.joined() + row[last]
        return String(line.reversed().drop { $0 == " " }.reversed()) + "\n"
    }.joined()
}

/// `unlock --older-than=DURATION`: gives back every slot held longer than that, one line each.
/// Each unlock is conditional on the holder record that was read: a holder that gave its slot
/// back and took one again in between keeps the new one.
func runUnlockOlderThan(_ context: Context, _ text: String) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "unlock --older-than takes no machine id\nRun 'locksmithctl help unlock' for usage.", status: ExitStatus.usage)
    }
    let limit: Int64
    do {
        limit = try Library.parseDuration(text)
    } catch {
        throw Failure(message: "Invalid duration for --older-than: \(Library.jsonQuoted(text)): \(error)", status: ExitStatus.usage)
    }
    guard limit > 0 else {
        throw Failure(message: "Invalid duration for --older-than: \(Library.jsonQuoted(text)): it must be more than 0", status: ExitStatus.usage)
    }
    let ages = try context.etcd("Error reading semaphore") { client in try holderAges(try client.get(), client) }
    let now = currentTime()
    let old = ages.filter { ($0.seconds(at: now) ?? 0) * 1_000_000_000 > limit }
    let unknown = ages.filter { $0.record == nil }
    if old.isEmpty {
        standardOutput("No holder has held its slot longer than \(Library.formatDuration(limit)).\n")
    }
    var failures = 0
    for age in old {
        guard let record = age.record, let seconds = age.seconds(at: now) else { continue }
        let from = record.host.isEmpty ? "" : " from \(record.host)"
        do {
            let retaken = try context.etcd("Error unlocking") { client -> Bool in
                do {
                    try client.unlock(age.id, recordRevision: record.revision)
                    return false
                } catch let error as LocksmithFailure where error.code == ESTALE {
                    return true
                }
            }
            if retaken {
                standardOutput("Kept \(age.id): it gave its slot back and took one again after its age was read\n")
            } else {
                standardOutput("Released \(age.id): held for \(heldFor(seconds)), since \(localTime(record.since))\(from)\n")
            }
        } catch let failure as Failure {
            failures += 1
            standardError("Could not release \(age.id): \(failure.message)\n")
        }
    }
    for age in unknown {
        standardOutput("Kept \(age.id): how long it has held its slot is unknown (it took it with a client that records nothing)\n")
    }
    if failures > 0 {
        throw Failure(message: "Error unlocking: \(failures) of \(old.count) slot(s) could not be given back", status: ExitStatus.failed)
    }
}
