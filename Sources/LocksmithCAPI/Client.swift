// locksmith_client: the etcd lock client (or FleetLock, with fleetlock-url), its options, and the
// listings it makes (locksmith_groups, locksmith_holder_records).
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

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

/// The option names as static C strings, made once.
nonisolated(unsafe) private let optionNames: [UnsafeMutablePointer<CChar>] = ClientOptions.names.map { strdup($0)! }

@c @implementation
public func locksmith_client_new(_ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        try out(ret, "ret").pointee = ClientHandle.make(ClientState())
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
public func locksmith_client_option_name(_ i: Int32) -> UnsafePointer<CChar>! {
    guard inRange(i, optionNames.count) else { return nil }
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
public func locksmith_client_option_variable(_ prefix: UnsafePointer<CChar>!, _ option: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>!) -> Int32 {
    call {
        let name = try text(prefix, "prefix", limit: 64), optionName = try text(option, "option", limit: 256)
        let r = try out(ret, "ret")
        try ClientOptions.checkPrefix(name)
        guard ClientOptions.names.contains(optionName) else { throw invalid("option \(JSONText.quotedExcerpt(optionName)) is not a client option") }
        r.pointee = try copyOut(ClientOptions.variable(prefix: name, option: optionName))
        return 0
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
public func locksmith_client_warning_count(_ c: OpaquePointer!) -> Int32 {
    ClientHandle.count(c, "c") { $0.options.warnings }
}

@c @implementation
public func locksmith_client_warning(_ c: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    ClientHandle.lendItem(c, "c", i, "client warning", { $0.options.warnings }) { $0 }
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
public func locksmith_client_key(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = ClientHandle.accessed(c, "c") else { return nil }
    let key: String
    do {
        key = try GroupKey.key(group: handle.value.options.group)
    } catch {
        _ = fail(error)
        return nil
    }
    return handle.lend("key") { key }
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
public func locksmith_client_unlock_record(_ c: OpaquePointer!, _ id: UnsafePointer<CChar>!, _ revision: Int64) -> Int32 {
    clientCall(c) { state in
        try state.connected().unlock(state.holder(id), recordRevision: revision)
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
public func locksmith_client_queue_all(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        r.pointee = HolderRecordsHandle.make(try state.connected().queue().map(ListedRecord.init))
        return 0
    }
}

@c @implementation
public func locksmith_client_holder_records(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        let client = try state.connected()
        r.pointee = HolderRecordsHandle.make(try client.holderRecords().map { ListedRecord($0, key: client.holderRecordKey($0.id)) })
        return 0
    }
}

@c @implementation
public func locksmith_client_get_all(_ c: OpaquePointer!, _ ret_semaphore: UnsafeMutablePointer<OpaquePointer?>!,
                                    _ ret_records: UnsafeMutablePointer<OpaquePointer?>!, _ ret_queue: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let semaphore = try out(ret_semaphore, "ret_semaphore"), records = try out(ret_records, "ret_records")
        let queue = try out(ret_queue, "ret_queue")
        let client = try state.connected()
        let status = try client.getAll()
        semaphore.pointee = SemaphoreHandle.make(status.document)
        records.pointee = HolderRecordsHandle.make(status.holderRecords.map { ListedRecord($0, key: client.holderRecordKey($0.id)) })
        queue.pointee = HolderRecordsHandle.make(status.queue.map(ListedRecord.init))
        return 0
    }
}

@c @implementation
public func locksmith_client_groups(_ c: OpaquePointer!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    clientCall(c) { state in
        let r = try out(ret, "ret")
        r.pointee = GroupsHandle.make(GroupsState(try state.connected().allGroups()))
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
public func locksmith_client_last_error_option(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = ClientHandle.accessed(c, "c"), let option = handle.value.lastErrorOption else { return nil }
    return handle.lend("last error option") { option }
}

@c @implementation
public func locksmith_client_api(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = ClientHandle.accessed(c, "c"), let api = handle.value.client?.api else { return nil }
    return handle.lend("api") { api.rawValue }
}

@c @implementation
public func locksmith_client_endpoint(_ c: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = ClientHandle.accessed(c, "c"), let endpoint = handle.value.client?.endpointInUse else { return nil }
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
