// locksmith_config: KEY=VALUE settings, from the update.conf files, a text or the environment.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

typealias ConfigHandle = Handle<Configuration>

@c @implementation
public func locksmith_config_load(_ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        r.pointee = ConfigHandle.make(try Configuration.load())
        return 0
    }
}

/// The settings files as static C strings, made once.
nonisolated(unsafe) private let configFiles: [UnsafeMutablePointer<CChar>] = Configuration.updateConfPaths.map { strdup($0)! }

@c @implementation
public func locksmith_config_file(_ i: Int32) -> UnsafePointer<CChar>! {
    accessor(nil) { UnsafePointer(configFiles[try index(i, configFiles.count)]) }
}

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
public func locksmith_config_line(_ c: OpaquePointer!, _ key: UnsafePointer<CChar>!) -> Int32 {
    call {
        let handle = try ConfigHandle.from(c, "c")
        let name = try text(key, "key")
        guard let setting = handle.value.settings[name] else { throw LocksmithError(.notFound, "\(name) is not set") }
        return Int32(clamping: setting.line)
    }
}

@c @implementation
public func locksmith_config_warning_count(_ c: OpaquePointer!) -> Int32 {
    ConfigHandle.count(c, "c") { $0.warnings }
}

@c @implementation
public func locksmith_config_warning(_ c: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    ConfigHandle.lendItem(c, "c", i, "warning", { $0.warnings }) { $0 }
}

@c @implementation
public func locksmith_config_free(_ c: OpaquePointer!) -> OpaquePointer! {
    ConfigHandle.release(c)
}
