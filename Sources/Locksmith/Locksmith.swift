// The Swift face of liblocksmith's C API (include/locksmith.h), for the programs written in Swift:
// locksmithctl and locksmithd reach every semaphore, window, configuration, machine-id and etcd
// operation through these calls, exactly as the C programs, the PAM module and Python do. Each
// type owns its C handle and frees it; each failure is thrown as a `LocksmithFailure` carrying
// the errno, the message and the setting involved. Nothing here decides anything: it converts.
import CLocksmith
import Glibc

/// A failed `locksmith_*` call: `code` is the positive errno (EBUSY, ECONNREFUSED, ...),
/// `message` the library's text for people, `option` the setting whose value was wrong, if any.
public struct LocksmithFailure: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public let option: String?

    public init(code: Int32, message: String, option: String? = nil) {
        (self.code, self.message, self.option) = (code, message, option)
    }

    public var description: String { message }
}

/// LOCKSMITH_NO_ENVIRONMENT (a macro expression Swift does not import).
let noEnvironment: UInt64 = 1

/// Throws the thread's last error when `r` is negative; returns `r` otherwise.
@discardableResult
func check(_ r: Int32) throws -> Int32 {
    guard r < 0 else { return r }
    throw LocksmithFailure(code: -r, message: String(cString: locksmith_last_error()))
}

/// A string the library malloc()ed, copied and freed.
func take(_ p: UnsafeMutablePointer<CChar>?) -> String {
    defer { locksmith_free(p) }
    return p.map { String(cString: $0) } ?? ""
}

/// A borrowed string, copied (nil stays nil).
func copy(_ p: UnsafePointer<CChar>?) -> String? {
    p.map { String(cString: $0) }
}

/// The items `count` says there are, each read by `item`.
func list(_ count: Int32, _ item: (Int32) -> UnsafePointer<CChar>?) -> [String] {
    (0..<max(count, 0)).compactMap { copy(item($0)) }
}

public enum Library {
    /// The library's version, e.g. "0.11.0".
    public static var version: String { String(cString: locksmith_version()) }

    /// The root system paths are read under by default: $LOCKSMITH_ROOT, else "/".
    public static var root: String {
        var root: UnsafeMutablePointer<CChar>?
        guard locksmith_root(&root) >= 0 else { return "/" }
        return take(root)
    }

    /// This machine's id (/etc/machine-id under `root`; nil: under $LOCKSMITH_ROOT, else "/").
    public static func machineID(root: String? = nil) throws -> String {
        var id: UnsafeMutablePointer<CChar>?
        if let root { try check(locksmith_machine_id_at(root, &id)) } else { try check(locksmith_machine_id(&id)) }
        return take(id)
    }

    /// The etcd key of `group`'s semaphore.
    public static func groupKey(_ group: String) throws -> String {
        var key: UnsafeMutablePointer<CChar>?
        try check(locksmith_group_key(group, &key))
        return take(key)
    }

    /// The group whose semaphore lives at `key` ("" for the default group).
    public static func group(ofKey key: String) throws -> String {
        var group: UnsafeMutablePointer<CChar>?
        try check(locksmith_key_group(key, &group))
        return take(group)
    }

    /// The wait before retry number `attempt`, in seconds (5 s doubling to 5 min).
    public static func backoff(attempt: Int) -> Int64 {
        var seconds: Int64 = 300
        _ = locksmith_backoff_delay(Int32(clamping: attempt), &seconds)
        return seconds
    }

    /// A Go duration ("1h30m") in nanoseconds.
    public static func parseDuration(_ text: String) throws -> Int64 {
        var nanoseconds: Int64 = 0
        try check(locksmith_duration_parse(text, &nanoseconds))
        return nanoseconds
    }

    /// Nanoseconds as Go prints a duration ("5m0s").
    public static func formatDuration(_ nanoseconds: Int64) -> String {
        var text: UnsafeMutablePointer<CChar>?
        guard locksmith_duration_format(nanoseconds, &text) >= 0 else { return "\(nanoseconds)ns" }
        return take(text)
    }

    /// `text` as a JSON string, escaped as the original's encoder did.
    public static func jsonQuoted(_ text: String) -> String {
        var quoted: UnsafeMutablePointer<CChar>?
        guard locksmith_json_quote(text, &quoted) >= 0 else { return "\"\"" }
        return take(quoted)
    }

    /// `path` (absolute) under `root` ("/" or "": the system itself), by LOCKSMITH_ROOT's rule.
    public static func path(_ path: String, under root: String) -> String {
        var made: UnsafeMutablePointer<CChar>?
        // Refused (a relative root or path): "", which opens nothing, never the system's own path.
        guard locksmith_root_path(root.isEmpty ? "/" : root, path, &made) >= 0 else { return "" }
        return take(made)
    }

    /// Unix time `t` for people, by strftime(3) `format` (nil: "Thu 2026-11-26 23:00 CET"), in
    /// local time or UTC.
    public static func formatTime(_ t: Int64, _ format: String? = nil, utc: Bool = false) -> String {
        var made: UnsafeMutablePointer<CChar>?
        guard locksmith_time_format(t, format, utc ? 1 : 0, &made) >= 0 else { return "\(t)" }
        return take(made)
    }

    /// What /var/lib/locksmith/reboot-slot (under `root`) says.
    public enum SlotRecord: Equatable {
        case missing, notHeld
        case held(key: String, id: String)
    }

    /// Reads the reboot-slot record; throws when the file is not one.
    public static func slotRecord(root: String) throws -> SlotRecord {
        var key: UnsafeMutablePointer<CChar>?, id: UnsafeMutablePointer<CChar>?
        let r = locksmith_slot_record_read(root, &key, &id)
        if r == -ENOENT { return .missing }
        if try check(r) == 0 { return .notHeld }
        return .held(key: take(key), id: take(id))
    }

    /// Records that `held.id` holds a slot of the semaphore at `held.key` (nil: none held).
    public static func recordSlot(_ held: (key: String, id: String)?, root: String) throws {
        try check(locksmith_slot_record_write(root, held?.key, held?.id))
    }

    /// The etcd client's options, in the order help texts list them: name, what it takes
    /// ("URL", "FILE", ...) and what it does.
    public static let options: [(name: String, valueName: String, description: String)] = optionNames.indices.map { i in
        var valueName: UnsafePointer<CChar>?, description: UnsafePointer<CChar>?
        _ = locksmith_client_option_help(Int32(i), &valueName, &description)
        return (optionNames[i], copy(valueName) ?? "VALUE", copy(description) ?? "")
    }

    /// The etcd client's option names, in the order help texts list them.
    public static let optionNames: [String] = {
        var names: [String] = []
        while let name = locksmith_client_option_name(Int32(names.count)) { names.append(String(cString: name)) }
        return names
    }()
}

/// A semaphore document, copied out of the library.
public struct SemaphoreDocument: Sendable, Equatable {
    public var available: Int
    public var max: Int
    public var holders: [String]

    /// Parses a stored document (throws EBADMSG for one that is not a semaphore document).
    public init(parsing json: String) throws {
        var handle: OpaquePointer?
        try check(locksmith_semaphore_parse(json, &handle))
        self.init(taking: handle)
    }

    /// Copies `handle` (not freed here).
    init(_ handle: OpaquePointer) {
        var available: Int32 = 0, max: Int32 = 0
        _ = locksmith_semaphore_get_available(handle, &available)
        _ = locksmith_semaphore_get_max(handle, &max)
        self.available = Int(available)
        self.max = Int(max)
        holders = list(locksmith_semaphore_holder_count(handle)) { locksmith_semaphore_holder(handle, $0) }
    }

    /// Copies and frees `handle`.
    init(taking handle: OpaquePointer?) {
        self.init(handle!)
        _ = locksmith_semaphore_free(handle)
    }
}

/// Merged KEY=VALUE settings: the update.conf files, and the environment unless told not to.
public final class Configuration {
    let handle: OpaquePointer

    /// The settings files the library reads, in order (later files win).
    public static let files: [String] = {
        var files: [String] = []
        while let file = locksmith_config_file(Int32(files.count)) { files.append(String(cString: file)) }
        return files
    }()

    /// The node's configuration: files under `root` (nil: $LOCKSMITH_ROOT, else "/"), then the
    /// environment when `environment`.
    public init(root: String? = nil, environment: Bool = true) throws {
        var made: OpaquePointer?
        if root == nil && environment {
            try check(locksmith_config_load(&made))
        } else {
            try check(locksmith_config_load_at(root, environment ? 0 : noEnvironment, &made))
        }
        handle = made!
    }

    /// One text in EnvironmentFile syntax.
    public init(parsing text: String, origin: String) throws {
        var made: OpaquePointer?
        try check(locksmith_config_parse(text, origin, &made))
        handle = made!
    }

    init(handle: OpaquePointer) { self.handle = handle }

    deinit { _ = locksmith_config_free(handle) }

    /// The value of `key` and where it came from (a file, or "environment"), or nil.
    public subscript(key: String) -> (value: String, origin: String)? {
        var value: UnsafePointer<CChar>?, origin: UnsafePointer<CChar>?
        guard locksmith_config_get(handle, key, &value, &origin) >= 0 else { return nil }
        return (copy(value) ?? "", copy(origin) ?? "")
    }

    /// The line of its file on which `key`'s assignment starts; nil when nothing sets it or it
    /// came from the environment.
    public func line(_ key: String) -> Int? {
        let r = locksmith_config_line(handle, key)
        return r > 0 ? Int(r) : nil
    }

    /// Lines of the files that were skipped, each naming its file and line.
    public var warnings: [String] {
        list(locksmith_config_warning_count(handle)) { locksmith_config_warning(handle, $0) }
    }
}

/// One of the files a running locksmithd keeps under /run (coordinator.conf, the state file),
/// read with the library's checks (root's, writable by nobody else, small).
public struct DaemonFile {
    public static let coordinatorPath = "/run/update-engine/coordinator.conf"
    public static let statePath = "/run/locksmith/state"

    public let values: Configuration
    /// true: a running daemon holds it; false: left over from one that stopped; nil: unknown.
    public let running: Bool?
    /// When the daemon last replaced it (Unix seconds).
    public let modified: Int64

    /// Reads `path` under `root` (nil: $LOCKSMITH_ROOT, else "/"); nil when there is no file.
    public static func read(_ path: String, root: String? = nil) throws -> DaemonFile? {
        var handle: OpaquePointer?, modified: Int64 = 0
        let r = locksmith_daemon_file_read(root ?? Library.root, path, &handle, &modified)
        if r == -ENOENT { return nil }
        try check(r)
        return DaemonFile(values: Configuration(handle: handle!), running: r == 2 ? nil : r == 1, modified: modified)
    }

    /// The text of the state file for a daemon with `strategy` in `state` since `stateSince`,
    /// holding `slot` (nil: none; since nil: not known).
    public static func stateText(strategy: String, state: String, stateSince: Int64,
                                 slot: (key: String, id: String, since: Int64?)?) throws -> String {
        var text: UnsafeMutablePointer<CChar>?
        try check(locksmith_daemon_state_text(strategy, state, stateSince, slot?.key, slot?.id, slot?.since ?? -1, &text))
        return take(text)
    }
}

/// A reboot window ("Thu 23:00", "1h30m"), evaluated in local time.
public final class Window {
    let handle: OpaquePointer
    /// Whether the handle belongs to another object (the daemon's settings).
    private let borrowed: Bool

    public init(start: String, length: String) throws {
        var made: OpaquePointer?
        try check(locksmith_window_parse(start, length, &made))
        handle = made!
        borrowed = false
    }

    init(borrowing handle: OpaquePointer) {
        self.handle = handle
        borrowed = true
    }

    deinit { if !borrowed { _ = locksmith_window_free(handle) } }

    /// Seconds from `now` until the window opens: > 0 before, <= 0 inside.
    public func secondsToStart(now: Int64) throws -> Int64 {
        var seconds: Int64 = 0
        try check(locksmith_window_seconds_to_start(handle, now, &seconds))
        return seconds
    }

    /// The window that contains `now`, or else the next one.
    public func occurrence(now: Int64) throws -> (start: Int64, end: Int64) {
        var start: Int64 = 0, end: Int64 = 0
        try check(locksmith_window_next(handle, now, &start, &end))
        return (start, end)
    }

    /// The IANA zone the window is read in; nil: local time.
    public var zone: String? { copy(locksmith_window_zone(handle)) }

    /// Reads the window in IANA zone `zone` (nil: local time).
    public func setZone(_ zone: String?) throws { try check(locksmith_window_set_zone(handle, zone)) }

    /// `t` on the window's clock: "Thu 2026-11-26 23:00 CET".
    public func format(_ t: Int64) -> String {
        var text: UnsafeMutablePointer<CChar>?
        guard locksmith_window_format_time(handle, t, &text) >= 0 else { return "\(t)" }
        return take(text)
    }

    /// The window as text: "Thu 23:00" and "1h30m0s".
    public var text: (start: String, length: String) {
        var start: UnsafeMutablePointer<CChar>?, length: UnsafeMutablePointer<CChar>?
        guard locksmith_window_to_string(handle, &start, &length) >= 0 else { return ("", "") }
        return (take(start), take(length))
    }
}

/// The daemon's settings, read and checked by the library.
public final class DaemonSettings: @unchecked Sendable {
    let handle: OpaquePointer

    public init(_ config: Configuration, root: String) throws {
        var made: OpaquePointer?
        try check(locksmith_daemon_settings_load(config.handle, root, &made))
        handle = made!
        // The settings the daemon acts on, checked once here: a library that does not give one
        // (or gives a word this overlay does not know) is an error at start, never a default.
        for name in ["strategy", "slot-wait", "reboot-source", "hooks-directory"] where value(name) == nil {
            throw LocksmithFailure(code: EINVAL, message: "the library gives no daemon setting \(name)")
        }
        guard Strategy(rawValue: value("strategy")!) != nil, SlotWait(rawValue: value("slot-wait")!) != nil,
              RebootSource(rawValue: value("reboot-source")!) != nil else {
            throw LocksmithFailure(code: EINVAL, message: "the library gives a daemon setting this program does not know")
        }
        for name in ["broadcast-delay", "reboot-check-interval", "hook-timeout"] where nanoseconds(name) < 0 {
            throw LocksmithFailure(code: EINVAL, message: "the library gives no duration for the daemon setting \(name)")
        }
    }

    deinit { _ = locksmith_daemon_settings_free(handle) }

    /// REBOOT_STRATEGY. (The C API gives it as the word; the programs compare cases.)
    public enum Strategy: String, Sendable, CustomStringConvertible {
        case etcdLock = "etcd-lock", fleetLock = "fleetlock", reboot, off
        public var description: String { rawValue }
    }

    /// LOCKSMITHD_SLOT_WAIT: etcd's watch (the queue) or the original's backoff polling.
    public enum SlotWait: String, Sendable, CustomStringConvertible {
        case watch, poll
        public var description: String { rawValue }
    }

    /// LOCKSMITHD_REBOOT_SOURCE: where "reboot needed" comes from (`rebootSourceArgument` is its
    /// file or command).
    public enum RebootSource: String, Sendable, CustomStringConvertible {
        case auto, updateEngine = "update-engine", file, command
        public var description: String { rawValue }
    }

    /// Setting `name` (locksmith_daemon_settings_get); nil when it is not set.
    public func value(_ name: String) -> String? {
        var value: UnsafePointer<CChar>?
        guard locksmith_daemon_settings_get(handle, name, &value) >= 0 else { return nil }
        return copy(value)
    }

    /// A setting the library always sets, as the overlay's type (checked in init).
    private func word<T: RawRepresentable>(_ name: String) -> T where T.RawValue == String {
        T(rawValue: value(name) ?? "")!
    }

    /// A duration setting, in nanoseconds (-1 if the library gives none: init refuses that).
    private func nanoseconds(_ name: String) -> Int64 {
        (try? Library.parseDuration(value(name) ?? "")) ?? -1
    }

    public var strategy: Strategy { word("strategy") }
    /// Whether reboots wait for a slot of the group's semaphore: in etcd, or through a FleetLock server.
    public var takesSlot: Bool { strategy == .etcdLock || strategy == .fleetLock }
    /// Whether slots are taken through a FleetLock server (no watch, no status: polling).
    public var usesFleetLock: Bool { strategy == .fleetLock }
    /// The id FleetLock slots are taken under (LOCKSMITHD_FLEETLOCK_ID); nil: the machine id.
    public var fleetLockID: String? { value("fleetlock-id") }
    public var window: Window? { locksmith_daemon_settings_window(handle).map { Window(borrowing: $0) } }
    /// Nanoseconds.
    public var broadcastDelay: Int64 { nanoseconds("broadcast-delay") }
    public var slotWait: SlotWait { word("slot-wait") }
    public var utmp: String { value("utmp") ?? "" }
    public var group: String { value("group") ?? "" }
    public var warnings: [String] {
        list(locksmith_daemon_settings_warning_count(handle)) { locksmith_daemon_settings_warning(handle, $0) }
    }
    public var rebootSource: RebootSource { word("reboot-source") }
    /// The sentinel file (auto, file), the command line (command), or "".
    public var rebootSourceArgument: String { value("reboot-source-argument") ?? "" }
    /// Nanoseconds.
    public var rebootCheckInterval: Int64 { nanoseconds("reboot-check-interval") }
    /// Nanoseconds.
    public var hookTimeout: Int64 { nanoseconds("hook-timeout") }
    /// The directory of pre-lock.d, pre-reboot.d and post-reboot.d.
    public var hooksDirectory: String { value("hooks-directory")! }  // checked in init
    /// nil: no metrics file.
    public var metricsFile: String? { value("metrics-file") }
    /// The settings the window came from, as people read them ("LOCKSMITHD_REBOOT_WINDOW_START=...");
    /// zone is nil when the window is in local time.
    public var windowSources: (start: String, length: String, zone: String?)? {
        guard let start = copy(locksmith_daemon_settings_window_source(handle, 0)),
              let length = copy(locksmith_daemon_settings_window_source(handle, 1)) else { return nil }
        return (start, length, copy(locksmith_daemon_settings_window_source(handle, 2)))
    }

    /// A new client with these etcd settings.
    public func client(environment: Bool = true) throws -> Client {
        var made: OpaquePointer?
        try check(locksmith_daemon_settings_new_client(handle, environment ? 0 : noEnvironment, &made))
        return Client(handle: made!)
    }
}

/// One group's semaphore in etcd.
public final class Client: @unchecked Sendable {
    let handle: OpaquePointer
    private var traceBox: Unmanaged<TraceBox>?

    /// A client with the defaults; `environment: false` reads no proxy variables from it.
    public init(environment: Bool = true) throws {
        var made: OpaquePointer?
        try check(locksmith_client_new_with_flags(environment ? 0 : noEnvironment, &made))
        handle = made!
    }

    init(handle: OpaquePointer) { self.handle = handle }

    deinit {
        _ = locksmith_client_free(handle)
        traceBox?.release()
    }

    /// Throws the client's last failure when `r` is negative.
    @discardableResult
    private func checkClient(_ r: Int32) throws -> Int32 {
        guard r < 0 else { return r }
        throw LocksmithFailure(code: -r, message: String(cString: locksmith_client_last_error(handle)),
                               option: copy(locksmith_client_last_error_option(handle)))
    }

    /// Sets option `name` (as the command-line flags are named) from the program's own flags.
    public func set(_ name: String, _ value: String) throws { try checkClient(locksmith_client_set(handle, name, value)) }

    /// The options the program did not set, from `<prefix>_<OPTION>` and the daemon's settings.
    public func loadSettings(prefix: String, daemon config: Configuration?) throws {
        try checkClient(locksmith_client_load_settings(handle, prefix, config?.handle))
    }

    /// Every option that is set, as it may be shown, with where it came from ("" for `set`).
    public var settings: [(name: String, value: String, origin: String)] {
        Library.optionNames.indices.compactMap { i in setting(at: i).map { (Library.optionNames[i], $0.value, $0.origin) } }
    }

    /// Option `name` as it may be shown, with where it came from ("" for `set`); nil if it is not set.
    public func setting(_ name: String) -> (value: String, origin: String)? {
        Library.optionNames.firstIndex(of: name).flatMap(setting(at:))
    }

    private func setting(at i: Int) -> (value: String, origin: String)? {
        var value: UnsafePointer<CChar>?, origin: UnsafePointer<CChar>?
        guard locksmith_client_setting(handle, Int32(i), &value, &origin) >= 0 else { return nil }
        return (copy(value) ?? "", copy(origin) ?? "")
    }

    public var warnings: [String] { list(locksmith_client_warning_count(handle)) { locksmith_client_warning(handle, $0) } }

    /// The options set, as the environment of a program that is to use the same ones
    /// (`PREFIX_OPTION=value`, real values; a password file rather than its password).
    public func environment(prefix: String) throws -> [String] {
        var strv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let n = try checkClient(locksmith_client_environment(handle, prefix, &strv))
        defer { _ = locksmith_strv_free(strv) }
        return (0..<Int(n)).compactMap { strv?[$0].map { String(cString: $0) } }
    }

    /// The semaphore, creating the key if it is missing.
    public func get() throws -> SemaphoreDocument {
        var s: OpaquePointer?
        try checkClient(locksmith_client_get(handle, &s))
        return SemaphoreDocument(taking: s)
    }

    /// The semaphore without writing: nil if the key is missing.
    public func read() throws -> SemaphoreDocument? {
        var s: OpaquePointer?
        let r = locksmith_client_read(handle, &s)
        if r == -ENOENT { return nil }
        try checkClient(r)
        return SemaphoreDocument(taking: s)
    }

    public func lock(_ id: String) throws { try checkClient(locksmith_client_lock(handle, id)) }
    public func unlock(_ id: String) throws { try checkClient(locksmith_client_unlock(handle, id)) }

    /// Gives back `id`'s slot only if its holder record is still the one read at `revision`
    /// (`Record.revision`); ESTALE if the holder gave it back (and perhaps took one again) since.
    public func unlock(_ id: String, recordRevision revision: Int64) throws {
        try checkClient(locksmith_client_unlock_record(handle, id, revision))
    }

    /// Sets the maximum; returns the old one.
    @discardableResult
    public func setMax(_ max: Int) throws -> Int {
        var old: Int32 = 0
        try checkClient(locksmith_client_set_max(handle, Int32(clamping: max), &old))
        return Int(old)
    }

    /// Waits for a change of the semaphore: true when it changed, false on timeout.
    public func wait(milliseconds: Int) throws -> Bool {
        try checkClient(locksmith_client_wait(handle, Int64(milliseconds))) == 1
    }

    /// A holder record or a queue entry as the library read it.
    public struct Record: Sendable {
        public let id: String
        /// Unix seconds.
        public let since: Int64
        public let host: String
        /// Its etcd key, and the revision (v3) or modification index (v2) it was read at.
        public let key: String
        public let revision: Int64
        /// A queue entry waiters skip: LOCKSMITH_QUEUE_NEVER_EXPIRES or LOCKSMITH_QUEUE_UNREADABLE; else 0.
        public let ignored: Int32

        public static let neverExpires = LOCKSMITH_QUEUE_NEVER_EXPIRES
        public static let unreadable = LOCKSMITH_QUEUE_UNREADABLE
    }

    /// When each holder of the group took its slot and from which host, as this library's
    /// clients recorded it, sorted by id (records of former holders may remain).
    public func holderRecords() throws -> [Record] {
        try records(locksmith_client_holder_records)
    }

    /// The waiters of the group's queue, first in line first: the id each waits for, when it
    /// joined and from which host.
    public func queue() throws -> [Record] {
        try records(locksmith_client_queue)
    }

    /// Every entry of the group's queue, first in line first, with those waiters skip (`ignored`).
    public func queueAll() throws -> [Record] {
        try records(locksmith_client_queue_all)
    }

    /// The semaphore (created if missing, as `get`), the holder records (as `holderRecords`) and
    /// every queue entry (as `queueAll`), read together: one request over etcd v3.
    public func getAll() throws -> (document: SemaphoreDocument, holderRecords: [Record], queue: [Record]) {
        var s: OpaquePointer?, records: OpaquePointer?, queue: OpaquePointer?
        try checkClient(locksmith_client_get_all(handle, &s, &records, &queue))
        return (SemaphoreDocument(taking: s), Client.records(records), Client.records(queue))
    }

    /// The list a `locksmith_client_*` function that fills a locksmith_holder_records makes.
    private func records(_ function: (OpaquePointer?, UnsafeMutablePointer<OpaquePointer?>?) -> Int32) throws -> [Record] {
        var made: OpaquePointer?
        try checkClient(function(handle, &made))
        return Client.records(made)
    }

    /// How a wait in the queue ended.
    public enum QueueOutcome: Sendable { case taken, timedOut, declined }

    /// Waits in the group's queue and takes a slot for `holder` in turn (`milliseconds` nil: no
    /// limit). `progress` hears the number of waiters ahead each time it changes, and 0 before
    /// each attempt to take a slot; it returns false to decline the slot (the wait ends).
    public func acquire(_ holder: String, milliseconds: Int?, progress: ((Int) -> Bool)? = nil) throws -> QueueOutcome {
        final class Box { let body: ((Int) -> Bool)?; init(_ b: ((Int) -> Bool)?) { body = b } }
        let box = Box(progress)
        return try withExtendedLifetime(box) {
            let r = try checkClient(locksmith_client_acquire(handle, holder, Int64(milliseconds ?? -1), { ahead, data in
                Unmanaged<Box>.fromOpaque(data!).takeUnretainedValue().body?(Int(ahead)) == false ? 1 : 0
            }, Unmanaged.passUnretained(box).toOpaque()))
            return r == 0 ? .taken : r == 1 ? .timedOut : .declined
        }
    }

    /// The entries of a locksmith_holder_records list, which is freed.
    private static func records(_ made: OpaquePointer?) -> [Record] {
        defer { _ = locksmith_holder_records_free(made) }
        return (0..<max(locksmith_holder_records_count(made), 0)).map { i in
            Record(id: copy(locksmith_holder_records_id(made, i)) ?? "", since: locksmith_holder_records_since(made, i),
                   host: copy(locksmith_holder_records_host(made, i)) ?? "", key: copy(locksmith_holder_records_key(made, i)) ?? "",
                   revision: locksmith_holder_records_revision(made, i), ignored: max(locksmith_holder_records_ignored(made, i), 0))
        }
    }

    /// Makes the client ready without sending anything (loads libcurl): the first request's
    /// error, early.
    public func prepare() throws { try checkClient(locksmith_client_prepare(handle)) }

    /// Cancels the wait in progress and fails every later call, until called with false. Any
    /// thread may call it.
    public func cancel(_ cancelled: Bool = true) { _ = locksmith_client_cancel(handle, cancelled ? 1 : 0) }

    /// The newest semaphore the client saw, without asking etcd (nil: none yet).
    public func lastSeen() throws -> SemaphoreDocument? {
        var s: OpaquePointer?
        let r = locksmith_client_last_seen(handle, &s)
        if r == -ENOENT { return nil }
        try checkClient(r)
        return SemaphoreDocument(taking: s)
    }

    /// Every group with a semaphore: its document, or why it holds none.
    public func groups() throws -> [(group: String, key: String, semaphore: Result<SemaphoreDocument, LocksmithFailure>)] {
        var g: OpaquePointer?
        try checkClient(locksmith_client_groups(handle, &g))
        defer { _ = locksmith_groups_free(g) }
        return (0..<max(locksmith_groups_count(g), 0)).map { i in
            let name = copy(locksmith_groups_name(g, i)) ?? "", key = copy(locksmith_groups_key(g, i)) ?? ""
            if let s = locksmith_groups_semaphore(g, i) { return (name, key, .success(SemaphoreDocument(s))) }
            return (name, key, .failure(LocksmithFailure(code: EBADMSG, message: copy(locksmith_groups_error(g, i)) ?? "")))
        }
    }

    public var key: String { copy(locksmith_client_key(handle)) ?? "" }
    /// "v2" or "v3" once known.
    public var api: String? { copy(locksmith_client_api(handle)) }
    public var endpoint: String? { copy(locksmith_client_endpoint(handle)) }

    /// One line per HTTP request (never a password); nil turns it off.
    public func trace(_ body: ((String) -> Void)?) {
        traceBox?.release()
        traceBox = nil
        guard let body else {
            _ = locksmith_client_set_trace(handle, nil, nil)
            return
        }
        let box = Unmanaged.passRetained(TraceBox(body))
        traceBox = box
        _ = locksmith_client_set_trace(handle, { line, userdata in
            Unmanaged<TraceBox>.fromOpaque(userdata!).takeUnretainedValue().body(String(cString: line!))
        }, box.toOpaque())
    }

    private final class TraceBox {
        let body: (String) -> Void
        init(_ body: @escaping (String) -> Void) { self.body = body }
    }
}
