// The C API of include/locksmith.h. `@c @implementation` makes the compiler check each function
// here against its declaration in the header. Each export converts arguments, calls the core,
// and converts the result; the rules live in LocksmithCore.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

typealias SemaphoreHandle = Handle<SemaphoreDocument>
typealias WindowHandle = Handle<ZonedWindow>
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
        r.pointee = WindowHandle.make(ZonedWindow(window))
        return 0
    }
}

@c @implementation
public func locksmith_window_seconds_to_start(_ w: OpaquePointer!, _ now: Int64, _ ret_seconds: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret_seconds, "ret_seconds")
        r.pointee = try window.secondsToStart(now: now)
        return 0
    }
}

@c @implementation
public func locksmith_window_next(_ w: OpaquePointer!, _ now: Int64, _ ret_start: UnsafeMutablePointer<Int64>!, _ ret_end: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret_start, "ret_start")
        let occurrence = try window.occurrence(now: now)
        r.pointee = occurrence.start
        ret_end?.pointee = occurrence.end
        return 0
    }
}

@c @implementation
public func locksmith_window_to_string(_ w: OpaquePointer!, _ ret_start: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!, _ ret_length: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value.window
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
public func locksmith_window_set_zone(_ w: OpaquePointer!, _ zone: UnsafePointer<CChar>!) -> Int32 {
    call {
        let handle = try WindowHandle.from(w, "w")
        let name = zone.map { String(cString: $0) } ?? ""
        handle.value.zone = name.isEmpty ? nil : try ZoneCalendar(name: name)
        return 0
    }
}

@c @implementation
public func locksmith_window_zone(_ w: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? WindowHandle.from(w, "w"), let zone = handle.value.zone else { return nil }
    return handle.lend("zone") { zone.name }
}

@c @implementation
public func locksmith_window_format_time(_ w: OpaquePointer!, _ t: Int64, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let window = try WindowHandle.from(w, "w").value
        let r = try out(ret, "ret")
        r.pointee = try copyOut(window.format(t))
        return 0
    }
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
        r.pointee = ConfigHandle.make(try Configuration.load())
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
    var lastErrorOption: String?
    /// locksmith_client_cancel's flag: kept across clients made anew after a change of options.
    let cancellation = Cancellation()
    var trace: (function: locksmith_trace_function, userdata: UnsafeMutableRawPointer?)?

    func connected() throws -> EtcdClient {
        if let client { return client }
        let made = try EtcdClient(options: options, cancellation: cancellation)
        made.deadline = deadline
        applyTrace(made)
        client = made
        return made
    }

    func applyTrace(_ client: EtcdClient) {
        guard let (function, userdata) = trace else {
            client.trace = nil
            return
        }
        client.trace = { line in line.withCString { function($0, userdata) } }
    }

    func holder(_ id: UnsafePointer<CChar>?) throws -> String {
        if let id { return try text(id, "id", limit: SemaphoreDocument.maxHolderBytes + 1) }
        return try MachineID.read(root: options.usesEnvironment ? nil : "/")
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
    let r: Int32
    do {
        r = try body(state)
        state.lastError = ""
        state.lastErrorOption = nil
    } catch {
        r = fail(error)
        state.lastError = String(cString: lastErrorMessage())
        state.lastErrorOption = (error as? LocksmithError)?.option
    }
    handle.releaseBorrowed()  // drops strings lent out before this call (the value stays: cancel reads it from other threads)
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
        let count = try state.options.loadEnvironment(prefix: name, lookup: Syscalls.checkedEnvironment)
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
public func locksmith_client_apply(_ c: OpaquePointer!, _ n: Int32, _ holders: UnsafeMutablePointer<UnsafePointer<CChar>?>!,
                                   _ give_back: UnsafePointer<Int32>!, _ ret_results: UnsafeMutablePointer<Int32>!) -> Int32 {
    clientCall(c) { state in
        guard (1...1024).contains(n) else { throw invalid("n must be 1 to 1024, got \(n)") }
        guard let holders, let give_back, let ret_results else { throw invalid("holders, give_back and ret_results must not be NULL") }
        var changes: [(holder: String, take: Bool)] = []
        for i in 0..<Int(n) {
            guard let holder = holders[i] else { throw invalid("holders[\(i)] is NULL") }
            changes.append((try text(holder, "holders[\(i)]", limit: SemaphoreDocument.maxHolderBytes + 1), give_back[i] == 0))
        }
        let results = try state.connected().apply(changes)
        var made: Int32 = 0
        for (i, result) in results.enumerated() {
            ret_results[i] = result.map { -$0.kind.errno } ?? 0
            if result == nil { made += 1 }
        }
        return made
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
public func locksmith_client_acquire(_ c: OpaquePointer!, _ holder: UnsafePointer<CChar>!, _ timeout_ms: Int64,
                                     _ progress: (@convention(c) (Int32, UnsafeMutableRawPointer?) -> Int32)?,
                                     _ userdata: UnsafeMutableRawPointer?) -> Int32 {
    clientCall(c) { state in
        let id = try text(holder, "holder")
        let limit = timeout_ms < 0 ? nil : Int(min(timeout_ms, Int64(Int32.max)))
        let outcome = try state.connected().acquire(id, timeoutMilliseconds: limit) { ahead in
            (progress?(Int32(clamping: ahead), userdata) ?? 0) == 0
        }
        switch outcome {
        case .taken: return 0
        case .timedOut: return 1
        case .declined: return 2
        }
    }
}

@c @implementation
public func locksmith_client_queue(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        r.pointee = HolderRecordsHandle.make(try state.connected().queue().filter { $0.ignored == nil }.map(ListedRecord.init))
        return 0
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
        r.pointee = ConfigHandle.make(try Configuration.load(root: rootArgument(root), environment: environment))
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

// MARK: Version 2: what programs need

@c @implementation
public func locksmith_key_group(_ key: UnsafePointer<CChar>!, _ ret_group: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_group, "ret_group")
        let name = try text(key, "key", limit: 4096)
        guard let group = GroupKey.group(ofKey: name), !name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
            throw invalid("key \(JSONText.quotedExcerpt(name)) is not a semaphore key of the reboot lock")
        }
        r.pointee = try copyOut(group)
        return 0
    }
}

@c @implementation
public func locksmith_root(_ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = try copyOut(SystemRoot.current())
        return 0
    }
}

@c @implementation
public func locksmith_duration_format(_ nanoseconds: Int64, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = try copyOut(GoDuration.format(nanoseconds))
        return 0
    }
}

@c @implementation
public func locksmith_json_quote(_ text_: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        r.pointee = try copyOut(JSONText.quoted(utf8: try bytes(text_, "text")))
        return 0
    }
}

@c @implementation
public func locksmith_config_warning_count(_ c: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try ConfigHandle.from(c, "c").value.warnings.count) }
}

@c @implementation
public func locksmith_config_warning(_ c: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let handle = try? ConfigHandle.from(c, "c") else { return nil }
    let warnings = handle.value.warnings
    guard i >= 0, Int(i) < warnings.count else { return nil }
    return handle.lend("warning \(i)") { warnings[Int(i)] }
}

/// The option names as static C strings, made once.
nonisolated(unsafe) private let optionNames: [UnsafeMutablePointer<CChar>] = ClientOptions.names.map { strdup($0)! }

@c @implementation
public func locksmith_client_option_name(_ i: Int32) -> UnsafePointer<CChar>! {
    guard i >= 0, Int(i) < optionNames.count else { return nil }
    return UnsafePointer(optionNames[Int(i)])
}

/// The option help texts as static C strings, made once.
nonisolated(unsafe) private let optionHelp: [(valueName: UnsafeMutablePointer<CChar>, description: UnsafeMutablePointer<CChar>)] =
    ClientOptions.names.map { name in
        let help = ClientOptions.help[name] ?? ("VALUE", "")
        return (strdup(help.valueName)!, strdup(help.description)!)
    }

@c @implementation
public func locksmith_client_option_help(_ i: Int32, _ ret_value_name: UnsafeMutablePointer<UnsafePointer<CChar>?>!, _ ret_description: UnsafeMutablePointer<UnsafePointer<CChar>?>!) -> Int32 {
    guard i >= 0, Int(i) < optionHelp.count else { return fail(invalid("option number \(i) is out of range")) }
    ret_value_name?.pointee = UnsafePointer(optionHelp[Int(i)].valueName)
    ret_description?.pointee = UnsafePointer(optionHelp[Int(i)].description)
    return 0
}

@c @implementation
public func locksmith_client_load_settings(_ c: OpaquePointer!, _ prefix: UnsafePointer<CChar>!, _ conf: OpaquePointer!) -> Int32 {
    clientCall(c) { state in
        let name = try text(prefix, "prefix", limit: 64)
        let daemon = try conf.map { try ConfigHandle.from($0, "conf").value }
        let count = try state.options.resolve(prefix: name, daemon: daemon)
        state.client = nil
        return Int32(count)
    }
}

@c @implementation
public func locksmith_client_setting(_ c: OpaquePointer!, _ i: Int32, _ ret_value: UnsafeMutablePointer<UnsafePointer<CChar>?>!, _ ret_origin: UnsafeMutablePointer<UnsafePointer<CChar>?>!) -> Int32 {
    guard let handle = try? ClientHandle.from(c, "c") else { return fail(invalid("c is NULL")) }
    guard i >= 0, Int(i) < ClientOptions.names.count else { return fail(invalid("option number \(i) is out of range")) }
    let name = ClientOptions.names[Int(i)]
    guard let (value, origin) = handle.value.options.display(name) else {
        return fail(LocksmithError(.notFound, "\(name) is not set"))
    }
    ret_value?.pointee = handle.lend("setting value \(name)") { value }
    ret_origin?.pointee = handle.lend("setting origin \(name)") { origin }
    return 0
}

@c @implementation
public func locksmith_client_environment(_ c: OpaquePointer!, _ prefix: UnsafePointer<CChar>!, _ ret_strv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>!) -> Int32 {
    clientCall(c) { state in
        let strings = try state.options.environment(prefix: text(prefix, "prefix", limit: 64))
        let ret = try out(ret_strv, "ret_strv")
        ret.pointee = try copyOut(strings)
        return Int32(clamping: strings.count)
    }
}

@c @implementation
public func locksmith_strv_free(_ strv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>! {
    guard let strv else { return nil }
    var i = 0
    while let s = strv[i] {
        free(s)
        i += 1
    }
    free(strv)
    return nil
}

@c @implementation
public func locksmith_client_warning_count(_ c: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try ClientHandle.from(c, "c").value.options.warnings.count) }
}

@c @implementation
public func locksmith_client_warning(_ c: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let handle = try? ClientHandle.from(c, "c") else { return nil }
    let warnings = handle.value.options.warnings
    guard i >= 0, Int(i) < warnings.count else { return nil }
    return handle.lend("client warning \(i)") { warnings[Int(i)] }
}

@c @implementation
public func locksmith_client_last_error_option(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? ClientHandle.from(c, "c"), let option = handle.value.lastErrorOption else { return nil }
    return handle.lend("last error option") { option }
}

@c @implementation
public func locksmith_client_key(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? ClientHandle.from(c, "c"), let key = try? GroupKey.key(group: handle.value.options.group) else { return nil }
    return handle.lend("key") { key }
}

@c @implementation
public func locksmith_client_set_trace(_ c: OpaquePointer!, _ f: locksmith_trace_function!, _ userdata: UnsafeMutableRawPointer!) -> Int32 {
    clientCall(c) { state in
        state.trace = f.map { ($0, userdata) }
        if let client = state.client { state.applyTrace(client) }
        return 0
    }
}

@c @implementation
public func locksmith_client_prepare(_ c: OpaquePointer!) -> Int32 {
    clientCall(c) { state in
        _ = try state.connected()
        return 0
    }
}

@c @implementation
public func locksmith_client_cancel(_ c: OpaquePointer!, _ cancel: Int32) -> Int32 {
    // Only an atomic store on an object the handle keeps: safe in a signal handler and from any
    // thread, so it neither records an error message nor touches the client's other state.
    guard let c else { return -EINVAL }
    Unmanaged<ClientHandle>.fromOpaque(UnsafeRawPointer(c)).takeUnretainedValue().value.cancellation.set(cancel != 0)
    return 0
}

@c @implementation
public func locksmith_client_last_seen(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        guard let client = state.client, let document = try client.lastSeenDocument() else {
            throw LocksmithError(.notFound, "the client has seen no semaphore yet")
        }
        r.pointee = SemaphoreHandle.make(document)
        return 0
    }
}

/// locksmith_groups: the listing, with one semaphore handle per valid document, owned here.
final class GroupsState {
    struct Entry {
        var name: String
        var key: String
        var semaphore: OpaquePointer?
        var error: String?
    }
    let entries: [Entry]

    init(_ listing: [(group: String, key: String, document: Result<SemaphoreDocument, LocksmithError>)]) {
        entries = listing.map { item in
            let key = item.key
            switch item.document {
            case .success(let document): return Entry(name: item.group, key: key, semaphore: SemaphoreHandle.make(document), error: nil)
            case .failure(let error): return Entry(name: item.group, key: key, semaphore: nil, error: error.message)
            }
        }
    }

    deinit {
        for entry in entries { _ = SemaphoreHandle.release(entry.semaphore) }
    }
}

typealias GroupsHandle = Handle<GroupsState>

@c @implementation
public func locksmith_client_groups(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        r.pointee = GroupsHandle.make(GroupsState(try state.connected().allGroups()))
        return 0
    }
}

/// Entry `i` of a groups listing, or nil (NULL handle, or out of range).
private func groupEntry(_ g: OpaquePointer?, _ i: Int32) -> (GroupsHandle, GroupsState.Entry)? {
    guard let handle = try? GroupsHandle.from(g, "g"), i >= 0, Int(i) < handle.value.entries.count else { return nil }
    return (handle, handle.value.entries[Int(i)])
}

@c @implementation
public func locksmith_groups_count(_ g: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try GroupsHandle.from(g, "g").value.entries.count) }
}

@c @implementation
public func locksmith_groups_name(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, entry) = groupEntry(g, i) else { return nil }
    return handle.lend("name \(i)") { entry.name }
}

@c @implementation
public func locksmith_groups_key(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, entry) = groupEntry(g, i) else { return nil }
    return handle.lend("key \(i)") { entry.key }
}

@c @implementation
public func locksmith_groups_semaphore(_ g: OpaquePointer!, _ i: Int32) -> OpaquePointer! {
    groupEntry(g, i)?.1.semaphore
}

@c @implementation
public func locksmith_groups_error(_ g: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, entry) = groupEntry(g, i), let error = entry.error else { return nil }
    return handle.lend("error \(i)") { error }
}

@c @implementation
public func locksmith_groups_free(_ g: OpaquePointer!) -> OpaquePointer! {
    GroupsHandle.release(g)
}

// MARK: Holder records

/// One record of a locksmith_holder_records list: a holder record, or a queue entry.
struct ListedRecord {
    var record: HolderRecord
    var key: String
    /// LOCKSMITH_QUEUE_NEVER_EXPIRES, LOCKSMITH_QUEUE_UNREADABLE, or 0.
    var ignored: Int32 = 0

    init(_ record: HolderRecord, key: String) {
        self.record = record
        self.key = key
    }

    init(_ entry: QueueEntry) {
        record = HolderRecord(id: entry.id, since: entry.since, host: entry.host, revision: entry.revision)
        key = entry.key
        switch entry.ignored {
        case nil: ignored = 0
        case .neverExpires?: ignored = LOCKSMITH_QUEUE_NEVER_EXPIRES
        case .unreadable?: ignored = LOCKSMITH_QUEUE_UNREADABLE
        }
    }
}

typealias HolderRecordsHandle = Handle<[ListedRecord]>

@c @implementation
public func locksmith_client_holder_records(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        let client = try state.connected()
        r.pointee = HolderRecordsHandle.make(try client.holderRecords().map { ListedRecord($0, key: client.holderRecordKey($0.id)) })
        return 0
    }
}

/// Record `i`, or nil (NULL handle, or out of range).
private func holderRecord(_ r: OpaquePointer?, _ i: Int32) -> (HolderRecordsHandle, HolderRecord)? {
    listedRecord(r, i).map { ($0.0, $0.1.record) }
}

private func listedRecord(_ r: OpaquePointer?, _ i: Int32) -> (HolderRecordsHandle, ListedRecord)? {
    guard let handle = try? HolderRecordsHandle.from(r, "r"), i >= 0, Int(i) < handle.value.count else { return nil }
    return (handle, handle.value[Int(i)])
}

@c @implementation
public func locksmith_holder_records_count(_ r: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try HolderRecordsHandle.from(r, "r").value.count) }
}

@c @implementation
public func locksmith_holder_records_id(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, record) = holderRecord(r, i) else { return nil }
    return handle.lend("id \(i)") { record.id }
}

@c @implementation
public func locksmith_holder_records_since(_ r: OpaquePointer!, _ i: Int32) -> Int64 {
    holderRecord(r, i)?.1.since ?? -1
}

@c @implementation
public func locksmith_holder_records_host(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, record) = holderRecord(r, i) else { return nil }
    return handle.lend("host \(i)") { record.host }
}

@c @implementation
public func locksmith_holder_records_free(_ r: OpaquePointer!) -> OpaquePointer! {
    HolderRecordsHandle.release(r)
}

/// locksmith_daemon_settings: the settings, with a window handle owned here.
final class DaemonSettingsState {
    let settings: DaemonSettings
    let window: OpaquePointer?

    init(_ settings: DaemonSettings) {
        self.settings = settings
        window = settings.window.map { WindowHandle.make(ZonedWindow($0.window, zone: settings.windowZone?.zone)) }
    }

    deinit { _ = WindowHandle.release(window) }
}

typealias DaemonSettingsHandle = Handle<DaemonSettingsState>

@c @implementation
public func locksmith_daemon_settings_load(_ conf: OpaquePointer!, _ root: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let config = try ConfigHandle.from(conf, "conf").value
        r.pointee = DaemonSettingsHandle.make(DaemonSettingsState(try DaemonSettings.load(config, root: rootArgument(root))))
        return 0
    }
}

/// A text field of the daemon's settings, lent from the handle.
private func daemonSetting(_ s: OpaquePointer?, _ name: String, _ value: (DaemonSettings) -> String) -> UnsafePointer<CChar>? {
    guard let handle = try? DaemonSettingsHandle.from(s, "s") else { return nil }
    let settings = handle.value.settings
    return handle.lend(name) { value(settings) }
}

@c @implementation
public func locksmith_daemon_settings_strategy(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "strategy") { $0.strategy.rawValue }
}

@c @implementation
public func locksmith_daemon_settings_window(_ s: OpaquePointer!) -> OpaquePointer! {
    (try? DaemonSettingsHandle.from(s, "s"))?.value.window
}

@c @implementation
public func locksmith_daemon_settings_broadcast_delay(_ s: OpaquePointer!) -> Int64 {
    (try? DaemonSettingsHandle.from(s, "s"))?.value.settings.broadcastDelay ?? -1
}

@c @implementation
public func locksmith_daemon_settings_slot_wait(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "slot wait") { $0.slotWait.rawValue }
}

@c @implementation
public func locksmith_daemon_settings_utmp(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "utmp") { $0.utmp }
}

@c @implementation
public func locksmith_daemon_settings_group(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "group") { $0.etcd.group }
}

@c @implementation
public func locksmith_daemon_settings_window_source(_ s: OpaquePointer!, _ which: Int32) -> UnsafePointer<CChar>! {
    guard let handle = try? DaemonSettingsHandle.from(s, "s"), let window = handle.value.settings.window, (0...2).contains(which) else { return nil }
    if which == 2 {
        guard let zone = handle.value.settings.windowZone else { return nil }
        return handle.lend("window source 2") { zone.source.description }
    }
    return handle.lend("window source \(which)") { which == 0 ? window.start.description : window.length.description }
}

@c @implementation
public func locksmith_daemon_settings_warning_count(_ s: OpaquePointer!) -> Int32 {
    call { Int32(clamping: try DaemonSettingsHandle.from(s, "s").value.settings.warnings.count) }
}

@c @implementation
public func locksmith_daemon_settings_warning(_ s: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let handle = try? DaemonSettingsHandle.from(s, "s") else { return nil }
    let warnings = handle.value.settings.warnings
    guard i >= 0, Int(i) < warnings.count else { return nil }
    return handle.lend("warning \(i)") { warnings[Int(i)] }
}

@c @implementation
public func locksmith_daemon_settings_reboot_source(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "reboot source") { $0.rebootSource.kind }
}

@c @implementation
public func locksmith_daemon_settings_reboot_source_argument(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "reboot source argument") { $0.rebootSource.argument }
}

@c @implementation
public func locksmith_daemon_settings_reboot_check_interval(_ s: OpaquePointer!) -> Int64 {
    (try? DaemonSettingsHandle.from(s, "s"))?.value.settings.rebootCheckInterval ?? -1
}

@c @implementation
public func locksmith_daemon_settings_hook_timeout(_ s: OpaquePointer!) -> Int64 {
    (try? DaemonSettingsHandle.from(s, "s"))?.value.settings.hookTimeout ?? -1
}

@c @implementation
public func locksmith_daemon_settings_hooks_directory(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "hooks directory") { $0.hooksDirectory }
}

@c @implementation
public func locksmith_daemon_settings_metrics_file(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? DaemonSettingsHandle.from(s, "s"), let file = handle.value.settings.metricsFile else { return nil }
    return handle.lend("metrics file") { file }
}

@c @implementation
public func locksmith_daemon_settings_fleetlock_id(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = try? DaemonSettingsHandle.from(s, "s"), let id = handle.value.settings.fleetLockID else { return nil }
    return handle.lend("fleetlock id") { id }
}

@c @implementation
public func locksmith_daemon_settings_new_client(_ s: OpaquePointer!, _ flags: UInt64, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let settings = try DaemonSettingsHandle.from(s, "s").value.settings
        let state = ClientState()
        state.options = settings.etcd
        state.options.usesEnvironment = try usesEnvironment(flags: flags)
        r.pointee = ClientHandle.make(state)
        return 0
    }
}

@c @implementation
public func locksmith_daemon_settings_free(_ s: OpaquePointer!) -> OpaquePointer! {
    DaemonSettingsHandle.release(s)
}

// MARK: The reboot-slot record

@c @implementation
public func locksmith_slot_record_write(_ root: UnsafePointer<CChar>!, _ key: UnsafePointer<CChar>!, _ id: UnsafePointer<CChar>!) -> Int32 {
    call {
        let directory = try rootArgument(root)
        switch (key, id) {
        case (nil, nil):
            try SlotRecord.write(held: nil, root: directory)
        case (let key?, let id?):
            let keyText = try text(key, "key", limit: 4096), idText = try text(id, "id", limit: SemaphoreDocument.maxHolderBytes + 1)
            try SlotRecord.write(held: (keyText, idText), root: directory)
        default:
            throw invalid("key and id are both set or both NULL")
        }
        return 0
    }
}

@c @implementation
public func locksmith_slot_record_read(_ root: UnsafePointer<CChar>!, _ ret_key: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!, _ ret_id: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        switch SlotRecord.read(root: try rootArgument(root)) {
        case .missing: throw LocksmithError(.notFound, "\(SlotRecord.path) does not exist")
        case .unreadable(let why): throw LocksmithError(.badMessage, why)
        case .notHeld: return 0
        case .held(let key, let id):
            let k = try copyOut(key)
            guard let i = strdup(id) else {
                free(k)
                throw LocksmithError(.system(ENOMEM), "out of memory")
            }
            if let ret_key { ret_key.pointee = k } else { free(k) }
            if let ret_id { ret_id.pointee = i } else { free(i) }
            return 1
        }
    }
}

// ---- locksmithd's files under /run (LOCKSMITH_3) ----

@c @implementation
public func locksmith_daemon_file_read(_ root: UnsafePointer<CChar>!, _ path: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!, _ ret_modified: UnsafeMutablePointer<Int64>!) -> Int32 {
    call {
        let directory = try rootArgument(root)
        let file = try text(path, "path", limit: 4096)
        guard file.hasPrefix("/") else { throw invalid("path \(JSONText.quoted(file)) is not an absolute path") }
        let r = try out(ret, "ret")
        let contents = try DaemonFiles.read(file, root: directory)
        r.pointee = ConfigHandle.make(contents.values)
        ret_modified?.pointee = contents.modified
        return contents.liveness.rawValue
    }
}

@c @implementation
public func locksmith_daemon_state_text(_ strategy: UnsafePointer<CChar>!, _ state: UnsafePointer<CChar>!, _ state_since: Int64, _ slot_key: UnsafePointer<CChar>!, _ slot_id: UnsafePointer<CChar>!, _ slot_since: Int64, _ ret_text: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let r = try out(ret_text, "ret_text")
        var slot: DaemonFiles.Slot?
        switch (slot_key, slot_id) {
        case (nil, nil): slot = nil
        case (let key?, let id?):
            slot = DaemonFiles.Slot(key: try text(key, "slot_key", limit: 4096), id: try text(id, "slot_id", limit: SemaphoreDocument.maxHolderBytes + 1),
                                    since: slot_since >= 0 ? slot_since : nil)
        default:
            throw invalid("slot_key and slot_id are both set or both NULL")
        }
        r.pointee = try copyOut(DaemonFiles.stateText(strategy: try text(strategy, "strategy", limit: 256), state: try text(state, "state", limit: 256),
                                                      stateSince: state_since, slot: slot))
        return 0
    }
}

@c @implementation
public func locksmith_config_line(_ c: OpaquePointer!, _ key: UnsafePointer<CChar>!) -> Int32 {
    call {
        let handle = try ConfigHandle.from(c, "c")
        let name = try text(key, "key")
        guard let setting = handle.value.settings[name] else { throw LocksmithError(.notFound, "\(name) is not set") }
        return Int32(clamping: setting.line)
    }
}

// ---- What was read, exactly (LOCKSMITH_4) ----

@c @implementation
public func locksmith_holder_records_key(_ r: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    guard let (handle, listed) = listedRecord(r, i) else { return nil }
    return handle.lend("key \(i)") { listed.key }
}

@c @implementation
public func locksmith_holder_records_revision(_ r: OpaquePointer!, _ i: Int32) -> Int64 {
    holderRecord(r, i)?.1.revision ?? -1
}

@c @implementation
public func locksmith_holder_records_ignored(_ r: OpaquePointer!, _ i: Int32) -> Int32 {
    call {
        let handle = try HolderRecordsHandle.from(r, "r")
        guard i >= 0, Int(i) < handle.value.count else { throw invalid("i \(i) is out of range (0..<\(handle.value.count))") }
        return handle.value[Int(i)].ignored
    }
}

@c @implementation
public func locksmith_client_queue_all(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        r.pointee = HolderRecordsHandle.make(try state.connected().queue().map(ListedRecord.init))
        return 0
    }
}

@c @implementation
public func locksmith_client_unlock_record(_ c: OpaquePointer!, _ id: UnsafePointer<CChar>!, _ revision: Int64) -> Int32 {
    clientCall(c) { state in
        try state.connected().unlock(state.holder(id), recordRevision: revision)
        return 0
    }
}
