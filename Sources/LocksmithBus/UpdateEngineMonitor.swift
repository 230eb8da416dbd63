// Following the update engine on the system bus: its status at start (GetStatus) and every
// StatusUpdate signal after; malformed signals are reported once and ignored; an update engine
// that is not on the bus yet is waited for (NameOwnerChanged) rather than given up on.
import CSystemd
import Glibc
import LocksmithCore

public final class UpdateEngineMonitor {
    public enum Event {
        /// The update engine's operation (from GetStatus or a StatusUpdate signal).
        case status(UpdateStatus)
        /// The update engine is not on the bus (now, or any more).
        case absent
        /// A StatusUpdate signal that does not carry (x d s s x); reported once per monitor.
        case malformed(String)
    }

    private let bus: SystemBus
    private let handler: (Event) -> Void
    private var slots: [OpaquePointer?] = [nil, nil]
    private var reportedMalformed = false
    private var needsStatus = false

    /// Connects to the system bus and subscribes; `handler` is called on the thread that runs `run`.
    public init(handler: @escaping (Event) -> Void) throws {
        bus = try SystemBus()
        self.handler = handler
        let context = Unmanaged.passUnretained(self).toOpaque()
        var r = csd_match_status_update(bus.bus, &slots[0], { message, userdata, _ in
            let monitor = Unmanaged<UpdateEngineMonitor>.fromOpaque(userdata!).takeUnretainedValue()
            monitor.received(message)
            return 0
        }, context)
        guard r >= 0 else { throw SystemBus.error(r, "cannot subscribe to StatusUpdate") }
        r = csd_match_name_owner(bus.bus, &slots[1], UpdateEngine.service, { message, userdata, _ in
            let monitor = Unmanaged<UpdateEngineMonitor>.fromOpaque(userdata!).takeUnretainedValue()
            var name: UnsafePointer<CChar>?, old: UnsafePointer<CChar>?, new: UnsafePointer<CChar>?
            guard csd_read_name_owner_changed(message, &name, &old, &new) >= 0, let name,
                  String(cString: name) == UpdateEngine.service else { return 0 }
            if let new, new.pointee != 0 { monitor.needsStatus = true } else { monitor.handler(.absent) }
            return 0
        }, context)
        guard r >= 0 else { throw SystemBus.error(r, "cannot follow the update engine's name") }
    }

    deinit {
        for slot in slots { csd_slot_unref(slot) }
    }

    private func received(_ message: OpaquePointer?) {
        var checked: Int64 = 0, size: Int64 = 0, progress = 0.0
        var operation: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?
        if csd_read_status(message, &checked, &progress, &operation, &version, &size) < 0 {
            if !reportedMalformed {
                reportedMalformed = true
                handler(.malformed("a StatusUpdate signal that does not carry (x d s s x) was ignored (further ones are ignored silently)"))
            }
            return
        }
        handler(.status(UpdateStatus(lastCheckedTime: checked, progress: progress, currentOperation: operation.map { String(cString: $0) } ?? "",
                                     newVersion: version.map { String(cString: $0) } ?? "", newSize: size)))
    }

    /// Asks for the current status if the update engine is on the bus; reports `.absent` if not.
    private func poll() {
        if csd_name_has_owner(bus.bus, UpdateEngine.service) <= 0 {
            handler(.absent)
            return
        }
        do {
            handler(.status(try bus.updateStatus()))
        } catch {
            handler(.absent)
        }
    }

    /// Processes the bus until `shouldStop()` (checked at least every `checkMilliseconds`) or the
    /// connection fails (thrown). The first thing it does is ask for the current status.
    public func run(checkMilliseconds: Int32 = -1, shouldStop: () -> Bool) throws {
        poll()
        while !shouldStop() {
            var r: Int32
            repeat {
                r = csd_bus_process(bus.bus)
                if needsStatus {
                    needsStatus = false
                    poll()
                }
            } while r > 0
            if r < 0 { throw SystemBus.error(r, "the system bus connection failed") }
            var fds = pollfd(fd: csd_bus_get_fd(bus.bus), events: Int16(truncatingIfNeeded: csd_bus_get_events(bus.bus)), revents: 0)
            var timeout: UInt64 = 0
            var ms: Int32 = checkMilliseconds
            if csd_bus_get_timeout(bus.bus, &timeout) >= 0, timeout != UInt64.max {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let nowUsec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
                let busMs = timeout > nowUsec ? Int32(min((timeout - nowUsec + 999) / 1000, 60_000)) : 0
                ms = ms < 0 ? busMs : min(ms, busMs)
            }
            _ = Glibc.poll(&fds, 1, ms)
        }
    }
}
