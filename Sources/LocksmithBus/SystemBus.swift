// The system D-Bus through sd-bus: the update engine (com.coreos.update1) and logind, the two
// services a reboot manager talks to. DBUS_SYSTEM_BUS_ADDRESS is honoured (sd-bus reads it).
import CSystemd
import Glibc

/// The update engine's status tuple (x last_checked_time, d progress, s current_operation,
/// s new_version, x new_size), as GetStatus returns it and StatusUpdate carries it.
public struct UpdateStatus: Sendable, Equatable {
    public var lastCheckedTime: Int64
    public var progress: Double
    public var currentOperation: String
    public var newVersion: String
    public var newSize: Int64

    public init(lastCheckedTime: Int64 = 0, progress: Double = 0, currentOperation: String, newVersion: String = "", newSize: Int64 = 0) {
        (self.lastCheckedTime, self.progress, self.currentOperation, self.newVersion, self.newSize) =
            (lastCheckedTime, progress, currentOperation, newVersion, newSize)
    }

    /// The operation that means "an update is applied; reboot to use it".
    public static let needReboot = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
}

public enum UpdateEngine {
    public static let service = "com.coreos.update1"
    public static let path = "/com/coreos/update1"
    public static let interface = "com.coreos.update1.Manager"
}

public enum Logind {
    public static let service = "org.freedesktop.login1"
    public static let path = "/org/freedesktop/login1"
    public static let interface = "org.freedesktop.login1.Manager"
}

/// A failure on the bus: the errno (EACCES when refused for lack of permission) and a message.
public struct BusError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    /// The D-Bus error name of the answer, if one came (org.freedesktop.DBus.Error.AccessDenied).
    public var name: String? = nil
    public var description: String { message }

    /// No answer came: the connection went away or the call timed out. A method call may still
    /// have been carried out (logind starts a reboot, and its shutdown closes the bus before the
    /// answer is sent), so this is no refusal.
    public var answerLost: Bool {
        if [ECONNRESET, ENOTCONN, EPIPE, ETIMEDOUT, ESHUTDOWN].contains(code) { return true }
        return ["org.freedesktop.DBus.Error.Disconnected", "org.freedesktop.DBus.Error.NoReply",
                "org.freedesktop.DBus.Error.Timeout", "org.freedesktop.DBus.Error.TimedOut"].contains(name ?? "")
    }
}

/// A connection to the system bus. Belongs to one thread at a time.
public final class SystemBus {
    let bus: OpaquePointer

    /// Connects to the system bus (or the one DBUS_SYSTEM_BUS_ADDRESS names).
    public init() throws {
        var bus: OpaquePointer?
        let r = csd_bus_open_system(&bus)
        guard r >= 0, let bus else { throw SystemBus.error(r, "cannot connect to the system bus") }
        self.bus = bus
    }

    deinit { csd_bus_flush_close_unref(bus) }

    /// Emits the update engine's StatusUpdate signal, and waits until it has left this process.
    public func emitStatusUpdate(_ status: UpdateStatus) throws {
        var r = csd_emit_status_update(bus, status.lastCheckedTime, status.progress, status.currentOperation, status.newVersion, status.newSize)
        guard r >= 0 else { throw SystemBus.error(r, "cannot send the StatusUpdate signal") }
        r = csd_bus_flush(bus)
        guard r >= 0 else { throw SystemBus.error(r, "cannot flush the StatusUpdate signal") }
    }

    /// Asks logind to reboot now (`Reboot(false)`: no interactive authorization).
    public func reboot() throws {
        var error = sd_bus_error(name: nil, message: nil, _need_free: 0)
        defer { csd_error_free(&error) }
        let r = csd_call_reboot(bus, &error, 0)
        guard r >= 0 else { throw SystemBus.error(r, "logind refused to reboot", &error) }
    }

    /// The update engine's current status (its GetStatus method), asked of `destination`: the
    /// unique name of the connection that owns the engine's name, so that the answer comes from
    /// it and nobody else.
    public func updateStatus(from destination: String) throws -> UpdateStatus {
        var error = sd_bus_error(name: nil, message: nil, _need_free: 0)
        defer { csd_error_free(&error) }
        var reply: OpaquePointer?
        var r = csd_call_get_status(bus, destination, &error, &reply)
        guard r >= 0 else { throw SystemBus.error(r, "the update engine did not answer GetStatus", &error) }
        defer { csd_message_unref(reply) }
        var checked: Int64 = 0, size: Int64 = 0, progress = 0.0
        var operation: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?
        r = csd_read_status(reply, &checked, &progress, &operation, &version, &size)
        guard r >= 0 else { throw SystemBus.error(r, "GetStatus answered something else than (xdssx)") }
        return UpdateStatus(lastCheckedTime: checked, progress: progress, currentOperation: operation.map { String(cString: $0) } ?? "",
                            newVersion: version.map { String(cString: $0) } ?? "", newSize: size)
    }

    /// The unique name of the connection that owns `name` now, or nil if nobody does.
    public func owner(of name: String) throws -> String? {
        var owner: UnsafeMutablePointer<CChar>?
        let r = csd_get_name_owner(bus, name, &owner)
        guard r >= 0 else { throw SystemBus.error(r, "cannot ask the bus who owns \(name)") }
        defer { free(owner) }
        return owner.map { String(cString: $0) }
    }

    /// The user id of the connection `name`, as the bus daemon knows it (from the kernel, not
    /// from anything the connection says).
    public func userID(of name: String) throws -> UInt32 {
        var uid: UInt32 = 0
        let r = csd_get_connection_uid(bus, name, &uid)
        guard r >= 0 else { throw SystemBus.error(r, "cannot ask the bus which user \(name) is") }
        return uid
    }

    static func error(_ r: Int32, _ what: String, _ busError: UnsafeMutablePointer<sd_bus_error>? = nil) -> BusError {
        var detail = -r == ELIBACC ? String(cString: csd_load_error()) : String(cString: strerror(-r))
        if let e = busError?.pointee, let message = e.message {
            detail = String(cString: message) + (e.name.map { " (" + String(cString: $0) + ")" } ?? "")
        }
        return BusError(code: -r, message: "\(what): \(detail)", name: busError?.pointee.name.map { String(cString: $0) })
    }
}
