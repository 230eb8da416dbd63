// locksmith_daemon_settings: what locksmithd reads from its configuration, checked.
// Ordered as include/locksmith.h.
import CLocksmith
import Glibc
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

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

/// A text field of the daemon's settings, lent from the handle.
private func daemonSetting(_ s: OpaquePointer?, _ name: String, _ value: (DaemonSettings) -> String) -> UnsafePointer<CChar>? {
    guard let handle = DaemonSettingsHandle.accessed(s, "s") else { return nil }
    let settings = handle.value.settings
    return handle.lend(name) { value(settings) }
}

@c @implementation
public func locksmith_daemon_settings_load(_ conf: OpaquePointer!, _ root: UnsafePointer<CChar>!, _ ret: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    call {
        let r = try out(ret, "ret")
        let config = try ConfigHandle.from(conf, "conf").value
        r.pointee = DaemonSettingsHandle.make(DaemonSettingsState(try DaemonSettings.load(config, root: rootArgument(root))))
        return 0
    }
}

/// The setting names as static C strings, made once.
nonisolated(unsafe) private let settingNames: [UnsafeMutablePointer<CChar>] = DaemonSettings.names.map { strdup($0)! }

@c @implementation
public func locksmith_daemon_settings_name(_ i: Int32) -> UnsafePointer<CChar>! {
    accessor(nil) { UnsafePointer(settingNames[try index(i, settingNames.count)]) }
}

@c @implementation
public func locksmith_daemon_settings_get(_ s: OpaquePointer!, _ name: UnsafePointer<CChar>!, _ ret_value: UnsafeMutablePointer<UnsafePointer<CChar>?>!) -> Int32 {
    call {
        let handle = try DaemonSettingsHandle.from(s, "s")
        let setting = try text(name, "name", limit: 256)
        let r = try out(ret_value, "ret_value")
        guard let value = try handle.value.settings.value(setting) else { throw LocksmithError(.notFound, "\(setting) is not set") }
        r.pointee = handle.lend("setting \(setting)") { value }
        return 0
    }
}

@c @implementation
public func locksmith_daemon_settings_warning_count(_ s: OpaquePointer!) -> Int32 {
    DaemonSettingsHandle.count(s, "s") { $0.settings.warnings }
}

@c @implementation
public func locksmith_daemon_settings_warning(_ s: OpaquePointer!, _ i: Int32) -> UnsafePointer<CChar>! {
    DaemonSettingsHandle.lendItem(s, "s", i, "warning", { $0.settings.warnings }) { $0 }
}

@c @implementation
public func locksmith_daemon_settings_window(_ s: OpaquePointer!) -> OpaquePointer! {
    (DaemonSettingsHandle.accessed(s, "s"))?.value.window
}

@c @implementation
public func locksmith_daemon_settings_window_source(_ s: OpaquePointer!, _ which: Int32) -> UnsafePointer<CChar>! {
    guard let handle = DaemonSettingsHandle.accessed(s, "s") else { return nil }
    guard (0...2).contains(which) else {
        _ = fail(invalid("window source \(which) is out of range (0 to 2)"))
        return nil
    }
    guard let window = handle.value.settings.window else { return nil }  // no window: no source
    if which == 2 {
        guard let zone = handle.value.settings.windowZone else { return nil }
        return handle.lend("window source 2") { zone.source.description }
    }
    return handle.lend("window source \(which)") { which == 0 ? window.start.description : window.length.description }
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
public func locksmith_daemon_settings_strategy(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "strategy") { $0.strategy.rawValue }
}

@c @implementation
public func locksmith_daemon_settings_broadcast_delay(_ s: OpaquePointer!) -> Int64 {
    (DaemonSettingsHandle.accessed(s, "s"))?.value.settings.broadcastDelay ?? -1
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
public func locksmith_daemon_settings_reboot_source(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "reboot source") { $0.rebootSource.kind }
}

@c @implementation
public func locksmith_daemon_settings_reboot_source_argument(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "reboot source argument") { $0.rebootSource.argument }
}

@c @implementation
public func locksmith_daemon_settings_reboot_check_interval(_ s: OpaquePointer!) -> Int64 {
    (DaemonSettingsHandle.accessed(s, "s"))?.value.settings.rebootCheckInterval ?? -1
}

@c @implementation
public func locksmith_daemon_settings_hook_timeout(_ s: OpaquePointer!) -> Int64 {
    (DaemonSettingsHandle.accessed(s, "s"))?.value.settings.hookTimeout ?? -1
}

@c @implementation
public func locksmith_daemon_settings_hooks_directory(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    daemonSetting(s, "hooks directory") { $0.hooksDirectory }
}

@c @implementation
public func locksmith_daemon_settings_metrics_file(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = DaemonSettingsHandle.accessed(s, "s"), let file = handle.value.settings.metricsFile else { return nil }
    return handle.lend("metrics file") { file }
}

@c @implementation
public func locksmith_daemon_settings_fleetlock_id(_ s: OpaquePointer!) -> UnsafePointer<CChar>! {
    guard let handle = DaemonSettingsHandle.accessed(s, "s"), let id = handle.value.settings.fleetLockID else { return nil }
    return handle.lend("fleetlock id") { id }
}

@c @implementation
public func locksmith_daemon_settings_free(_ s: OpaquePointer!) -> OpaquePointer! {
    DaemonSettingsHandle.release(s)
}
