// The C API of include/locksmith.h. `@c @implementation` makes the compiler check each function
// here against its declaration in the header. Each export converts arguments, calls the core,
// and converts the result; the rules live in LocksmithCore.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

typealias SemaphoreHandle = Handle<SemaphoreDocument>
typealias WindowHandle = Handle<RebootWindow>
typealias ConfigHandle = Handle<Configuration>

nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup(Version.string)!

// MARK: General

@c @implementation
public func locksmith_version() -> UnsafePointer<CChar>! {
    UnsafePointer(versionString)
}

@c @implementation
public func locksmith_free(_ p: UnsafeMutableRawPointer!) {
    free(p)
}

@c @implementation
public func locksmith_last_error() -> UnsafePointer<CChar>! {
    lastErrorMessage()
}

// MARK: SemaphoreDocument

@c @implementation
public func locksmith_semaphore_new(_ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = SemaphoreHandle.make(SemaphoreDocument())
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_parse(_ json: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let document = try SemaphoreDocument(parsingUTF8: bytes(json, "json"))
        r.pointee = SemaphoreHandle.make(document)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_to_json(_ s: OpaquePointer!, _ ret_json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let handle = try SemaphoreHandle.from(s, "s")
        try out(ret_json, "ret_json").pointee = try copyOut(handle.value.json)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_lock(_ s: OpaquePointer!, _ holder: UnsafePointer<CChar>!) -> Int32 {
    call {
        try SemaphoreHandle.from(s, "s").value.lock(text(holder, "holder"))
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_unlock(_ s: OpaquePointer!, _ holder: UnsafePointer<CChar>!) -> Int32 {
    call {
        try SemaphoreHandle.from(s, "s").value.unlock(text(holder, "holder"))
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_set_max(_ s: OpaquePointer!, _ max: Int32, _ ret_old_max: UnsafeMutablePointer<Int32>!) -> Int32 {
    call {
        let old = try SemaphoreHandle.from(s, "s").value.setMax(Int(max))
        ret_old_max?.pointee = Int32(old)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_get_available(_ s: OpaquePointer!, _ ret: UnsafeMutablePointer<Int32>!) -> Int32 {
    call {
        let value = try SemaphoreHandle.from(s, "s").value.available
        try out(ret, "ret").pointee = Int32(value)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_get_max(_ s: OpaquePointer!, _ ret: UnsafeMutablePointer<Int32>!) -> Int32 {
    call {
        let value = try SemaphoreHandle.from(s, "s").value.max
        try out(ret, "ret").pointee = Int32(value)
        return 0
    }
}

@c @implementation
public func locksmith_semaphore_holder_count(_ s: OpaquePointer!) -> Int32 {
    call { Int32(try SemaphoreHandle.from(s, "s").value.holders.count) }
}

@c @implementation
public func locksmith_semaphore_holder(_ s: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let handle = try? SemaphoreHandle.from(s, "s") else { return nil }
    let holders = handle.value.holders
    guard i >= 0, Int(i) < holders.count else { return nil }
    return handle.lend("holder \(i)") { holders[Int(i)] }
}

@c @implementation
public func locksmith_semaphore_is_holder(_ s: OpaquePointer!, _ holder: UnsafePointer<CChar>!) -> Int32 {
    call {
        let handle = try SemaphoreHandle.from(s, "s")
        return handle.value.holds(try text(holder, "holder")) ? 1 : 0
    }
}

@c @implementation
public func locksmith_semaphore_free(_ s: OpaquePointer!) -> OpaquePointer! {
    SemaphoreHandle.release(s)
}

// MARK: Window

@c @implementation
public func locksmith_window_parse(_ start: UnsafePointer<CChar>!, _ length: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let window = try RebootWindow(start: text(start, "start"), length: text(length, "length"))
        r.pointee = WindowHandle.make(window)
        return 0
    }
}

@c @implementation
public func locksmith_window_seconds_to_start(_ w: OpaquePointer!, _ now: Int64, _ ret_seconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret_seconds, "ret_seconds")
        r.pointee = try window.secondsToStart(now: now, calendar: SystemCalendar())
        return 0
    }
}

@c @implementation
public func locksmith_window_next(_ w: OpaquePointer!, _ now: Int64, _ ret_start: UnsafeMutablePointer<Int64>!, _ ret_end: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret_start, "ret_start")
        let occurrence = try window.occurrence(now: now, calendar: SystemCalendar())
        r.pointee = occurrence.start
        ret_end?.pointee = occurrence.end
        return 0
    }
}

@c @implementation
public func locksmith_window_to_string(_ w: OpaquePointer!, _ ret_start: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!, _ ret_length: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let start = try copyOut(window.startText)
        guard let length = strdup(window.lengthText) else {
            free(start)
            throw LocksmithError(.system(ENOMEM), "out of memory")
        }
        if let ret_start { ret_start.pointee = start } else { free(start) }
        if let ret_length { ret_length.pointee = length } else { free(length) }
        return 0
    }
}

@c @implementation
public func locksmith_window_free(_ w: OpaquePointer!) -> OpaquePointer! {
    WindowHandle.release(w)
}

@c @implementation
public func locksmith_duration_parse(_ text_: UnsafePointer<CChar>!, _ ret_nanoseconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let r = try out(ret_nanoseconds, "ret_nanoseconds")
        r.pointee = try GoDuration.parse(text(text_, "text"))
        return 0
    }
}

// MARK: This node

@c @implementation
public func locksmith_machine_id(_ ret_id: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_id, "ret_id")
        r.pointee = try copyOut(MachineID.read())
        return 0
    }
}

@c @implementation
public func locksmith_group_key(_ group: UnsafePointer<CChar>!, _ ret_key: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_key, "ret_key")
        let name = try group.map { try text($0, "group", limit: GroupKey.maxGroupBytes) }
        r.pointee = try copyOut(GroupKey.key(group: name))
        return 0
    }
}

@c @implementation
public func locksmith_backoff_delay(_ attempt: Int32, _ ret_seconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let r = try out(ret_seconds, "ret_seconds")
        guard attempt >= 0 else { throw invalid("attempt is negative: \(attempt)") }
        r.pointee = Backoff.delay(attempt: Int(attempt))
        return 0
    }
}

// MARK: Configuration

@c @implementation
public func locksmith_config_load(_ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        r.pointee = ConfigHandle.make(try NodeConfiguration.load())
        return 0
    }
}

@c @implementation
public func locksmith_config_parse(_ text_: UnsafePointer<CChar>!, _ origin: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        var config = Configuration()
        config.merge(fileText: try text(text_, "text"), origin: try origin.map { try text($0, "origin") } ?? "<text>")
        r.pointee = ConfigHandle.make(config)
        return 0
    }
}

@c @implementation
public func locksmith_config_get(_ c: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ ret_value: UnsafeMutablePointer<UnsafePointer<CChar>?>!, _ ret_origin: UnsafeMutablePointer<UnsafePointer<CChar>?>!) -> Int32 {
    call {
        let handle = try ConfigHandle.from(c, "c")
        let name = try text(key, "key")
        let r = try out(ret_value, "ret_value")
        guard let setting = handle.value.settings[name] else {
            throw LocksmithError(.notFound, "\(name) is not set")
        }
        r.pointee = handle.lend("value \(name)") { setting.value }
        ret_origin?.pointee = handle.lend("origin \(name)") { setting.origin }
        return 0
    }
}

@c @implementation
public func locksmith_config_free(_ c: OpaquePointer!) -> OpaquePointer! {
    ConfigHandle.release(c)
}

// MARK: Client

/// A C client: its options, and the etcd client made from them at the first request.
final class ClientState {
    var options = ClientOptions()
    var client: EtcdClient?
    var lastError = ""
    /// locksmith_client_set_deadline's time, in monotonic milliseconds.
    var deadline: Int?

    func connected() throws -> EtcdClient {
        if let client { return client }
        let made = try EtcdClient(options: options)
        made.deadline = deadline
        client = made
        return made
    }

    func holder(_ id: UnsafePointer<CChar>?) throws -> String {
        if let id { return try text(id, "id", limit: SemaphoreDocument.maxHolderBytes + 1) }
        return try MachineID.read(root: options.usesEnvironment ? SystemRoot.current : "/")
    }
}

/// The flags the LOCKSMITH_2 functions know.
private let knownFlags: UInt64 = 1  // LOCKSMITH_NO_ENVIRONMENT

/// Whether a call with `flags` may read the process environment (never under secure execution).
private func usesEnvironment(flags: UInt64) throws -> Bool {
    guard flags & ~knownFlags == 0 else { throw invalid("flags has unknown bits: 0x\(String(flags, radix: 16))") }
    return flags & 1 == 0 && !Syscalls.secureExecution
}

/// An explicit root argument: NULL is "/"; otherwise an absolute path.
private func rootArgument(_ root: UnsafePointer<CChar>?) throws -> String {
    guard let root else { return "/" }
    let path = try text(root, "root", limit: 4096)
    guard path.hasPrefix("/") else { throw invalid("root \(JSONText.quoted(path)) is not an absolute path") }
    return path
}

typealias ClientHandle = Handle<ClientState>

/// Runs a client operation, keeping its failure message on the client as well.
private func clientCall(_ c: OpaquePointer?, _ body: (ClientState) throws -> Int32) -> Int32 {
    guard let handle = try? ClientHandle.from(c, "c") else { return fail(invalid("c is NULL")) }
    let state = handle.value
    let r = call { try body(state) }
    state.lastError = r < 0 ? String(cString: lastErrorMessage()) : ""
    handle.value = state  // drops strings lent out before this call
    return r
}

@c @implementation
public func locksmith_client_new(_ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = ClientHandle.make(ClientState())
        return 0
    }
}

@c @implementation
public func locksmith_client_set(_ c: OpaquePointer!, _ option: UnsafePointer<CChar>!, _ value: UnsafePointer<CChar>!) -> Int32 {
    clientCall(c) { state in
        try state.options.set(text(option, "option"), text(value, "value"))
        state.client = nil
        return 0
    }
}

@c @implementation
public func locksmith_client_load_env(_ c: OpaquePointer!, _ prefix: UnsafePointer<CChar>!) -> Int32 {
    clientCall(c) { state in
        let name = try text(prefix, "prefix", limit: 64)
        let count = try state.options.loadEnvironment(prefix: name, lookup: Syscalls.environment)
        state.client = nil
        return Int32(count)
    }
}

@c @implementation
public func locksmith_client_get(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        r.pointee = SemaphoreHandle.make(try state.connected().get())
        return 0
    }
}

@c @implementation
public func locksmith_client_lock(_ c: OpaquePointer!, _ id: UnsafePointer<CChar>!) -> Int32 {
    clientCall(c) { state in
        try state.connected().lock(state.holder(id))
        return 0
    }
}

@c @implementation
public func locksmith_client_unlock(_ c: OpaquePointer!, _ id: UnsafePointer<CChar>!) -> Int32 {
    clientCall(c) { state in
        try state.connected().unlock(state.holder(id))
        return 0
    }
}

@c @implementation
public func locksmith_client_set_max(_ c: OpaquePointer!, _ max: Int32, _ ret_old_max: UnsafeMutablePointer<Int32>!) -> Int32 {
    clientCall(c) { state in
        let old = try state.connected().setMax(Int(max))
        ret_old_max?.pointee = Int32(old)
        return 0
    }
}

@c @implementation
public func locksmith_client_wait(_ c: OpaquePointer!, _ timeout_ms: Int64) -> Int32 {
    clientCall(c) { state in
        guard timeout_ms >= 0 else { throw invalid("timeout_ms is negative: \(timeout_ms)") }
        return try state.connected().wait(timeoutMilliseconds: Int(min(timeout_ms, Int64(Int32.max)))) ? 1 : 0
    }
}

@c @implementation
public func locksmith_client_last_error(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? ClientHandle.from(c, "c") else { return lastErrorEmpty() }
    let message = handle.value.lastError
    return handle.lend("last error") { message }
}

@c @implementation
public func locksmith_client_api(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? ClientHandle.from(c, "c"), let api = handle.value.client?.api else { return nil }
    return handle.lend("api") { api.rawValue }
}

@c @implementation
public func locksmith_client_endpoint(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? ClientHandle.from(c, "c"), let endpoint = handle.value.client?.endpointInUse else { return nil }
    return handle.lend("endpoint") { endpoint }
}

@c @implementation
public func locksmith_client_stats(_ c: OpaquePointer!, _ ret_requests: UnsafeMutablePointer<Int64>!, _ ret_conflicts: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let client = try ClientHandle.from(c, "c").value.client
        ret_requests?.pointee = Int64(client?.requestCount ?? 0)
        ret_conflicts?.pointee = Int64(client?.conflictRetries ?? 0)
        return 0
    }
}

@c @implementation
public func locksmith_client_free(_ c: OpaquePointer!) -> OpaquePointer! {
    ClientHandle.release(c)
}

// MARK: Version 2

@c @implementation
public func locksmith_config_load_at(_ root: UnsafePointer<CChar>!, _ flags: UInt64, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let environment = try usesEnvironment(flags: flags)
        r.pointee = ConfigHandle.make(try NodeConfiguration.load(root: rootArgument(root), environment: environment))
        return 0
    }
}

@c @implementation
public func locksmith_machine_id_at(_ root: UnsafePointer<CChar>!, _ ret_id: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_id, "ret_id")
        r.pointee = try copyOut(MachineID.read(root: rootArgument(root)))
        return 0
    }
}

@c @implementation
public func locksmith_client_new_with_flags(_ flags: UInt64, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let state = ClientState()
        state.options.usesEnvironment = try usesEnvironment(flags: flags)
        r.pointee = ClientHandle.make(state)
        return 0
    }
}

@c @implementation
public func locksmith_client_set_deadline(_ c: OpaquePointer!, _ usec: UInt64) -> Int32 {
    clientCall(c) { state in
        // Microseconds to milliseconds, rounded up so that a deadline never comes early.
        state.deadline = usec == 0 ? nil : Int(min(usec / 1000 + (usec % 1000 == 0 ? 0 : 1), UInt64(Int.max)))
        state.client?.deadline = state.deadline
        return 0
    }
}

@c @implementation
public func locksmith_client_read(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        let client = try state.connected()
        guard let document = try client.read() else {
            throw LocksmithError(.notFound, "\(client.key): no semaphore is stored (nothing was created)")
        }
        r.pointee = SemaphoreHandle.make(document)
        return 0
    }
}
