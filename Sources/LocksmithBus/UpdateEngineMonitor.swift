// Following the update engine on the system bus: its status at start (GetStatus) and every
// StatusUpdate signal after; an update engine that is not on the bus yet is waited for
// (NameOwnerChanged) rather than given up on.
//
// Any local user may emit a signal with the update engine's interface and member, so a signal is
// believed only from the connection that owns com.coreos.update1 now (the bus daemon sets a
// message's sender; the owner is followed through NameOwnerChanged, itself believed only from the
// bus daemon), and a status that would start a reboot is confirmed by asking that owner with
// GetStatus. A signal from a root process is believed too: root can reboot the machine anyway,
// and `locksmithctl send-need-reboot` (run as root) is how the original tests a daemon. Other
// senders are ignored, and said so in the log for the first few.
import CSystemd
import Glibc

public final class UpdateEngineMonitor {
    public enum Event {
        /// The update engine's operation (from GetStatus, or a signal from its owner or root).
        case status(UpdateStatus)
        /// The update engine is not on the bus (now, or any more).
        case absent
        /// A StatusUpdate signal that does not carry (x d s s x); reported once per monitor.
        case malformed(String)
        /// A StatusUpdate from a sender that is neither the update engine nor root: ignored.
        case untrusted(String)
    }

    private let bus: SystemBus
    private let handler: (Event) -> Void
    private var slots: [OpaquePointer?] = [nil, nil]
    private var reportedMalformed = false
    /// The unique name of the update engine's connection, nil while it is not on the bus.
    private var owner: String?
    /// Set when the owner changed or said "reboot needed": ask it for its status.
    private var needsStatus = false
    /// Signals from senders other than the owner, to look at after the bus was processed (the
    /// sender's user id is a call to the bus daemon). Bounded: a flood keeps only the newest.
    private var others: [(sender: String, status: UpdateStatus)] = []
    private var untrustedReports = 0

    /// The bus daemon's own name: the only sender of NameOwnerChanged worth believing.
    static let busDriver = "org.freedesktop.DBus"

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
            monitor.ownerChanged(message)
            return 0
        }, context)
        guard r >= 0 else { throw SystemBus.error(r, "cannot follow the update engine's name") }
    }

    deinit {
        for slot in slots { csd_slot_unref(slot) }
    }

    private func ownerChanged(_ message: OpaquePointer?) {
        guard let sender = csd_message_sender(message), String(cString: sender) == UpdateEngineMonitor.busDriver else { return }
        var name: UnsafePointer<CChar>?, old: UnsafePointer<CChar>?, new: UnsafePointer<CChar>?
        guard csd_read_name_owner_changed(message, &name, &old, &new) >= 0, let name,
              String(cString: name) == UpdateEngine.service else { return }
        if let new, new.pointee != 0 {
            owner = String(cString: new)
            needsStatus = true
        } else {
            owner = nil
            handler(.absent)
        }
    }

    private func received(_ message: OpaquePointer?) {
        guard let senderName = csd_message_sender(message) else { return }
        let sender = String(cString: senderName)
        var checked: Int64 = 0, size: Int64 = 0, progress = 0.0
        var operation: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?
        let parsed = csd_read_status(message, &checked, &progress, &operation, &version, &size) >= 0
        guard sender == owner else {
            if parsed {
                others.append((sender, UpdateStatus(lastCheckedTime: checked, progress: progress,
                                                    currentOperation: operation.map { String(cString: $0) } ?? "",
                                                    newVersion: version.map { String(cString: $0) } ?? "", newSize: size)))
                if others.count > 16 { others.removeFirst(others.count - 16) }
            }
            return
        }
        guard parsed else {
            if !reportedMalformed {
                reportedMalformed = true
                handler(.malformed("a StatusUpdate signal that does not carry (x d s s x) was ignored (further ones are ignored silently)"))
            }
            return
        }
        let status = UpdateStatus(lastCheckedTime: checked, progress: progress, currentOperation: operation.map { String(cString: $0) } ?? "",
                                  newVersion: version.map { String(cString: $0) } ?? "", newSize: size)
        if status.currentOperation == UpdateStatus.needReboot {
            needsStatus = true  // confirmed with GetStatus before anyone acts on it
        } else {
            handler(.status(status))
        }
    }

    /// Asks the owner of the update engine's name for its status; reports `.absent` if nobody
    /// owns it (or the owner does not answer).
    private func poll() {
        do {
            owner = try bus.owner(of: UpdateEngine.service)
            guard let owner else {
                handler(.absent)
                return
            }
            handler(.status(try bus.updateStatus(from: owner)))
        } catch {
            handler(.absent)
        }
    }

    /// Signals from other senders: believed only from root.
    private func judgeOthers() {
        let pending = others
        others.removeAll()
        for (sender, status) in pending {
            if let uid = try? bus.userID(of: sender), uid == 0 {
                handler(.status(status))
            } else if untrustedReports < 5 {
                untrustedReports += 1
                handler(.untrusted("a StatusUpdate signal (\(status.currentOperation.debugDescription)) from \(sender), which is neither the update engine nor root, was ignored" + (untrustedReports == 5 ? " (further ones are ignored silently)" : "")))
            }
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
                if !others.isEmpty { judgeOthers() }
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
