// The daemon's state machine: wait for "reboot needed", wait for the reboot window, take a slot,
// warn the users, reboot; give the slot back once the machine is up again. Every wait is a state
// visible in coordinator.conf, in the log and in sd_notify STATUS.
import CGlibc
import CSystemd
import Glibc
import LocksmithBus
import LocksmithCore
import LocksmithEtcd
import LocksmithSystem

/// The daemon's settings, read from the environment and the update.conf files.
struct DaemonConfiguration {
    var strategy: DaemonSettings.Strategy
    var window: RebootWindow?
    var etcd: ClientOptions
    var root: String
    var utmp: String
    var broadcastDelayMilliseconds: Int
    /// `watch` (the default) or `poll`: how to wait for a free slot (poll: backoff only, as the original did).
    var slotWait: String

    static func load() throws -> (DaemonConfiguration, warnings: [String]) {
        let root = SystemRoot.current
        let config = try NodeConfiguration.load(root: root)
        var warnings = config.warnings
        let (strategy, deprecation) = try DaemonSettings.strategy(config)
        if let deprecation { warnings.append(deprecation) }
        let window = try DaemonSettings.rebootWindow(config)?.window
        var etcd = ClientOptions()
        do {
            try etcd.loadEnvironment(prefix: "LOCKSMITHD", lookup: { config[$0] })
        } catch let error as LocksmithError {
            // Name the file the bad variable came from.
            let variable = String(error.message.prefix { $0 != ":" })
            let origin = config.settings[variable]?.origin ?? "the environment"
            throw LocksmithError(.invalidArgument, "\(error.message) (from \(origin == "environment" ? "the environment" : origin))")
        }
        if let warning = etcd.passwordFileWarning { warnings.append(warning) }
        if let password = config.settings["LOCKSMITHD_ETCD_PASSWORD"], password.origin != "environment" {
            if Syscalls.worldReadableMode(password.origin) != nil {
                warnings.append("LOCKSMITHD_ETCD_PASSWORD is set in \(password.origin), which every user can read: put the password in a file only root can read and name it in LOCKSMITHD_ETCD_PASSWORD_FILE")
            }
        }
        let delay = try DaemonSettings.duration("LOCKSMITHD_REBOOT_BROADCAST_DELAY", in: config, default: 300_000_000_000)
        let utmp = DaemonSettings.first(["LOCKSMITHD_UTMP"], in: config)?.value ?? "/var/run/utmp"
        let slotWait = DaemonSettings.first(["LOCKSMITHD_SLOT_WAIT"], in: config)
        if let slotWait, slotWait.value != "watch" && slotWait.value != "poll" {
            throw LocksmithError(.invalidArgument, "\(slotWait.description) is not watch or poll")
        }
        return (DaemonConfiguration(strategy: strategy, window: window, etcd: etcd, root: root,
                                    utmp: SystemRoot.resolve(utmp, root: root),
                                    broadcastDelayMilliseconds: Int(delay / 1_000_000), slotWait: slotWait?.value ?? "watch"), warnings)
    }
}

final class Daemon {
    let configuration: DaemonConfiguration
    let coordinator: Coordinator
    let inputs: SharedInputs
    let machineID: String
    /// The etcd client (strategy etcd-lock), made when first needed: libcurl is loaded then, not
    /// while the daemon only waits for an update. A client that cannot be made is an error like
    /// any other: it never counts as holding a slot.
    private var client: EtcdClient?
    private func etcdClient() throws -> EtcdClient {
        if let client { return client }
        do {
            let made = try EtcdClient(options: configuration.etcd)
            client = made
            return made
        } catch let error as LocksmithError {
            throw LocksmithError(error.kind, "cannot make the etcd client: \(error.message)")
        }
    }
    private var usesEtcd: Bool { configuration.strategy == .etcdLock }
    let calendar = SystemCalendar()
    /// Half the unit's WatchdogSec, if it has one: no wait lasts longer, and each ends with a ping.
    let watchdogMilliseconds: Int?
    /// A slot of this run that is not given back yet (and no reboot was asked for yet): taken,
    /// or perhaps taken (a lock request whose answer was lost).
    private enum Slot { case none, maybe, taken }
    private var slot = Slot.none
    /// The slot left from before, to give back before taking one (from SlotRecord at start-up);
    /// nil once done, or when there is none.
    var staleSlot: (key: String, id: String)?
    /// The helper process that gives back the stale slot at start-up, until it is known to be done.
    var staleReleaser: pid_t?
    private var lastStatus = ""

    init(configuration: DaemonConfiguration, coordinator: Coordinator, inputs: SharedInputs) throws {
        self.configuration = configuration
        self.coordinator = coordinator
        self.inputs = inputs
        machineID = try MachineID.read(root: configuration.root)
        var usec: UInt64 = 0
        watchdogMilliseconds = csd_watchdog_enabled(&usec) > 0 ? max(Int(usec / 2000), 100) : nil
    }

    // MARK: The states

    /// Runs until asked to stop; returns the exit status.
    func run() -> Int32 {
        setState(.running, "waiting for an update")
        Notify.send("READY=1")
        var settled = false
        while !stopping {
            status("waiting for an update")
            if !settled && !inputs.current.rebootNeeded {
                // Give the bus thread a moment to read the update engine's status first.
                pause(milliseconds: 1000) { $0.rebootNeeded }
                if !inputs.current.rebootNeeded && !stopping { pageOutOwnCode() }
                settled = true
            }
            pause(milliseconds: nil) { $0.rebootNeeded }
            if stopping { break }
            Log.notice("an update was applied and needs a reboot")
            if rebootOnce() { break }
        }
        return finish()
    }

    /// One attempt at rebooting: window, slot, warning, logind. True once a reboot was asked for
    /// (or a stop), false to try again.
    private func rebootOnce() -> Bool {
        guard waitForWindow() else { return true }
        setState(.rebootPlanned, "reboot planned")
        if usesEtcd {
            switch acquireSlot() {
            case .stopped: return true
            case .windowClosed:
                setState(.running, "the reboot window closed before a slot was free")
                return false
            case .held: break
            }
            // The slot may have come late: reboot only inside the window.
            if let window = configuration.window, (try? window.secondsToStart(now: now(), calendar: calendar)) ?? 1 > 0 {
                Log.notice("the reboot window closed while waiting for a slot; giving the slot back")
                releaseTakenSlot()
                setState(.running, "waiting for the next reboot window")
                return false
            }
        }
        let reached = Broadcast.send(Broadcast.message(delayMilliseconds: configuration.broadcastDelayMilliseconds),
                                     utmp: configuration.utmp, root: configuration.root)
        if !reached.isEmpty {
            Log.notice("told \(reached.count) logged-in terminal(s) that the machine reboots in \(GoDuration.format(Int64(configuration.broadcastDelayMilliseconds) * 1_000_000))")
            status("rebooting in \(GoDuration.format(Int64(configuration.broadcastDelayMilliseconds) * 1_000_000)): users were warned")
            pause(milliseconds: configuration.broadcastDelayMilliseconds) { _ in false }
            if stopping { return true }
        }
        do {
            try SystemBus().reboot()
        } catch {
            Log.error("the reboot was refused: \(error)")
            releaseTakenSlot()
            setState(.running, "the reboot was refused; trying again")
            pause(milliseconds: Int(Backoff.initialSeconds * 1000)) { _ in false }
            return stopping
        }
        slot = .none  // kept through the reboot: the record makes the next start give it back
        setState(.rebooting, "rebooting")
        Log.notice("reboot requested")
        pause(milliseconds: nil) { _ in false }
        return true
    }

    /// Waits until the reboot window is open (at once without a window). False if stopped.
    private func waitForWindow() -> Bool {
        guard let window = configuration.window else { return true }
        while !stopping {
            let seconds: Int64
            do {
                seconds = try window.secondsToStart(now: now(), calendar: calendar)
            } catch {
                // A clock the window cannot be placed in (outside the years 1 to 9999) is not an
                // open window: wait for the clock to be set right.
                status("cannot place the reboot window in the current time (\(error)); waiting")
                pause(milliseconds: 300_000) { _ in false }
                continue
            }
            if seconds <= 0 { return true }
            status("waiting for reboot window \(window.startText), opens in \(Daemon.human(seconds))")
            // Wake at least every 5 minutes: the wall clock may jump.
            pause(milliseconds: Int(min(seconds, 300)) * 1000) { _ in false }
        }
        return false
    }

    private enum SlotOutcome { case held, windowClosed, stopped }

    /// Takes a slot, waiting for one with the watch (or backoff polling), retrying errors with
    /// backoff. Only a slot this run took counts: "holder exists" is this run's own lock only
    /// after a lock request whose answer was lost; otherwise someone else holds a slot under
    /// this machine's id, and the daemon waits for it as for a full semaphore. Every error
    /// (etcd unreachable, a bad document, no libcurl) means "no slot", never "held".
    private func acquireSlot() -> SlotOutcome {
        var busyAttempt = 0, errorAttempt = 0
        var lastError = ""
        while !stopping {
            do {
                let client = try etcdClient()
                try giveBackStaleSlot(client)
                if try lock(client) { return .held }
                if let outcome = waitForFreeSlot(client, attempt: &busyAttempt) { return outcome }
            } catch {
                let message = "\(error)"
                if message != lastError { Log.warning("cannot take a reboot slot: \(message); retrying"); lastError = message }
                status(StaleSlot.retryStatus(error, "take a slot"))
                pause(milliseconds: Int(Backoff.delay(attempt: errorAttempt)) * 1000) { _ in false }
                errorAttempt += 1
            }
        }
        return .stopped
    }

    /// One lock request: true once the slot is this run's and recorded, false when there is
    /// none to take now. A request whose answer was lost leaves the slot "maybe" ours (recorded,
    /// so that a crash or reboot still gives it back) and throws.
    private func lock(_ client: EtcdClient) throws -> Bool {
        let ours: Bool
        do {
            try client.lock(machineID)
            ours = true
        } catch let error as LocksmithError where error.kind == .exists {
            ours = slot == .maybe
            if !ours { status("waiting for a slot: this machine's id already holds one that locksmithd did not take (locksmithctl lock, or locksmith-run --id); waiting for it to be given back") }
        } catch let error as LocksmithError where error.kind == .busy {
            // "semaphore is at 0" is checked before "holder exists" (as in the original), so a
            // full semaphore that lists this machine after a lost answer is ours.
            ours = slot == .maybe && client.lastSeen?.holders.contains(machineID) == true
            if !ours, let document = client.lastSeen {
                // A few holders are news; thousands would make every status line and log entry huge.
                let more = document.holders.count > 10 ? " and \(document.holders.count - 10) more" : ""
                let held = document.holders.isEmpty ? "" : ", held by " + document.holders.prefix(10).joined(separator: ", ") + more
                status("waiting for a slot: \(max(document.available, 0)) of \(document.max) free\(held)")
            }
        } catch let error as LocksmithError where error.kind == .connectionFailed || error.kind == .timedOut {
            if slot == .none {
                slot = .maybe
                record(held: true)
            }
            throw error
        }
        guard ours else {
            if slot == .maybe {
                // The lost request did not land after all.
                slot = .none
                record(held: false)
            }
            return false
        }
        // The record comes before the reboot: without it, the next start would not give the
        // slot back. If it cannot be written, the slot is not kept.
        do {
            try SlotRecord.write(held: (client.key, machineID), root: configuration.root)
        } catch {
            slot = .taken
            releaseTakenSlot()
            throw LocksmithError(.system(EIO), "took a slot but cannot record it, so gave it back: \(error)")
        }
        slot = .taken
        Log.notice("took a reboot slot")
        return true
    }

    /// Waits for the semaphore to change (or the backoff, with LOCKSMITHD_SLOT_WAIT=poll). Returns
    /// .windowClosed when the reboot window closes first, nil to try again.
    private func waitForFreeSlot(_ client: EtcdClient, attempt: inout Int) -> SlotOutcome? {
        var limit = 300_000
        if let window = configuration.window, let open = try? window.occurrence(now: now(), calendar: calendar) {
            let left = open.end - now()
            if open.start > now() || left < 0 { return .windowClosed }
            limit = min(limit, Int(left) * 1000 + 1000)
        }
        if configuration.slotWait == "poll" {
            pause(milliseconds: min(Int(Backoff.delay(attempt: attempt)) * 1000, limit)) { _ in false }
            attempt += 1
        } else {
            _ = try? client.wait(timeoutMilliseconds: min(limit, watchdogMilliseconds ?? limit))
            ping()
        }
        return nil
    }

    /// Best effort: the record says whether this run may hold a slot (a failure is logged; the
    /// slot itself is handled by the caller).
    private func record(held: Bool) {
        do {
            try SlotRecord.write(held: held ? (GroupKey.key(group: configuration.etcd.group), machineID) : nil, root: configuration.root)
        } catch {
            Log.warning("\(error)")
        }
    }

    /// Before taking a slot: make sure the slot recorded from before (normally from before the
    /// last reboot) was given back. The helper process started at start-up normally did it long
    /// ago; if it is still retrying (etcd unreachable), it is stopped and the work is done here.
    private func giveBackStaleSlot(_ client: EtcdClient) throws {
        if let helper = staleReleaser {
            staleReleaser = nil
            var status: Int32 = 0
            if waitpid(helper, &status, WNOHANG) == helper, status == 0 {
                staleSlot = nil  // it gave the slot back (or had none to give back)
            } else {
                kill(helper, SIGTERM)
                waitpid(helper, &status, 0)
            }
        }
        guard let stale = staleSlot else { return }
        let owner = stale.key == client.key ? client : try StaleSlot.client(configuration.etcd, key: stale.key)
        try StaleSlot.giveBack(owner, id: stale.id)
        staleSlot = nil
        SlotRecord.writeLogged(held: nil, root: configuration.root)
    }

    /// Gives back the slot this run took (or may have taken), retrying a few times.
    private func releaseTakenSlot() {
        guard slot != .none, let client else { return }
        for attempt in 0..<5 {
            do {
                try client.unlock(machineID)
                Log.notice("gave the reboot slot back")
            } catch let error as LocksmithError where error.kind == .notFound {
                // Not held: a lost lock that never landed, or given back by hand.
            } catch {
                Log.warning("cannot give the reboot slot back: \(error)")
                Clock.sleep(milliseconds: 200 << attempt)
                continue
            }
            slot = .none
            record(held: false)
            return
        }
    }

    private func finish() -> Int32 {
        Notify.send("STOPPING=1")
        if slot != .none {
            // Asked to stop after taking a slot and before asking for a reboot: give it back.
            // The stop interrupted requests in flight; this one must go through.
            Interruption.reset()
            releaseTakenSlot()
        }
        Log.info("stopped")
        return 0
    }

    // MARK: Helpers

    private var stopping: Bool { inputs.current.stopRequested }

    private func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }

    /// Waits up to `milliseconds` (nil: no limit) for `done`, or a stop; pings the watchdog.
    private func pause(milliseconds: Int?, until done: @escaping (Inputs) -> Bool) {
        let deadline = milliseconds.map { Clock.monotonicMilliseconds() + $0 }
        while true {
            var step = deadline.map { $0 - Clock.monotonicMilliseconds() }
            if let s = step, s <= 0 { return }
            if let w = watchdogMilliseconds { step = min(step ?? w, w) }
            let seen = inputs.wait(milliseconds: step, until: done)
            ping()
            if seen.stopRequested || done(seen) { return }
        }
    }

    private func ping() {
        if watchdogMilliseconds != nil { Notify.send("WATCHDOG=1") }
    }

    private func setState(_ state: Coordinator.State, _ text: String) {
        do {
            try coordinator.set(state)
        } catch {
            Log.warning("\(error)")
        }
        Log.info("state \(state.rawValue)", ["LOCKSMITHD_STATE=\(state.rawValue)", "LOCKSMITHD_STRATEGY=\(configuration.strategy.rawValue)",
                                            "LOCKSMITHD_GROUP=\(configuration.etcd.group)", "LOCKSMITHD_MACHINE_ID=\(machineID)"])
        status(text)
    }

    private func status(_ text: String) {
        guard text != lastStatus else { return }
        lastStatus = text
        Log.info(text)
        Notify.status(text)
    }

    /// "3h12m", "45m", "30s": a wait as people say it.
    static func human(_ seconds: Int64) -> String {
        let h = seconds / 3600, m = (seconds / 60) % 60, s = seconds % 60
        if h > 0 { return "\(h)h\(m)m" }
        if m > 0 { return "\(m)m" }
        return "\(s)s"
    }
}

/// Giving back the slot this machine's daemon recorded as held, normally from before its reboot.
enum StaleSlot {
    /// The slot to give back at start-up, from the record: the recorded one; on a first start
    /// (no record yet: a machine new to locksmith-swift, perhaps upgraded from the original,
    /// which left no record) the machine id's slot in the configured group, as the original
    /// always did; none otherwise. A record that cannot be read is reported and left alone.
    static func target(root: String, options: ClientOptions, machineID: String) -> (key: String, id: String)? {
        switch SlotRecord.read(root: root) {
        case .missing:
            return (try? GroupKey.key(group: options.group)).map { ($0, machineID) }
        case .held(let key, let id):
            return (key, id)
        case .notHeld:
            return nil
        case .unreadable(let why):
            Log.warning("\(why): not giving back any slot at start-up (the next slot taken replaces the file)")
            return nil
        }
    }

    /// A client of the semaphore at `key` with otherwise the same settings.
    static func client(_ options: ClientOptions, key: String) throws -> EtcdClient {
        var options = options
        options.group = GroupKey.group(ofKey: key) ?? options.group
        return try EtcdClient(options: options)
    }

    /// Gives back `id`'s slot; "holder does not exist" counts as done.
    static func giveBack(_ client: EtcdClient, id: String) throws {
        do {
            try client.unlock(id)
            Log.notice("gave back the reboot slot this machine held from before its reboot")
        } catch let error as LocksmithError where error.kind == .notFound {
        }
    }

    /// The STATUS line while an etcd operation is retried: what stands in the way.
    static func retryStatus(_ error: any Error, _ what: String) -> String {
        switch (error as? LocksmithError)?.kind {
        case .badMessage?: return "the semaphore in etcd is not valid, cannot \(what); retrying until it is repaired"
        case .permissionDenied?: return "etcd refused access, cannot \(what); retrying"
        case .system(ELIBACC)?: return "libcurl cannot be loaded, cannot \(what); retrying"
        default: return "cannot reach etcd to \(what); retrying"
        }
    }

    /// Starts a helper process that makes an etcd client (loading libcurl) and gives back the
    /// stale slot, if any, while this one waits for an update: the waiting daemon itself then
    /// never loads libcurl and the TLS libraries. Returns the helper's pid once it has made its
    /// client, or throws why it could not (no usable libcurl: the daemon must not start, since it
    /// could never take a slot). Call before any thread starts. The helper stops when its parent
    /// is gone.
    static func startHelper(target: (key: String, id: String)?, options: ClientOptions, root: String) throws -> pid_t {
        var fds: [Int32] = [-1, -1]
        guard cglibc_pipe_cloexec(&fds) == 0 else { throw Syscalls.errnoError("cannot make a pipe") }
        let parent = getpid()
        let pid = fork()
        if pid < 0 { throw Syscalls.errnoError("cannot start a process") }
        if pid == 0 {
            close(fds[0])
            let client: EtcdClient
            do {
                client = try self.client(options, key: target?.key ?? GroupKey.key(group: options.group))
            } catch {
                let message = "\(error)"
                _ = message.withCString { write(fds[1], $0, strlen($0)) }
                _exit(1)
            }
            close(fds[1])
            guard let target else { _exit(0) }
            var attempt = 0, lastError = ""
            while getppid() == parent {
                do {
                    try giveBack(client, id: target.id)
                    SlotRecord.writeLogged(held: nil, root: root)
                    _exit(0)
                } catch {
                    let message = "\(error)"
                    if message != lastError { Log.warning("cannot give back a stale reboot slot: \(message); retrying"); lastError = message }
                }
                // Between attempts, look every second whether the daemon is still there.
                var left = Int(Backoff.delay(attempt: attempt)) * 1000
                attempt += 1
                while left > 0 && getppid() == parent {
                    Clock.sleep(milliseconds: min(left, 1000))
                    left -= 1000
                }
            }
            _exit(1)
        }
        close(fds[1])
        defer { close(fds[0]) }
        var message = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            message += buffer[0..<n]
        }
        if !message.isEmpty {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw LocksmithError(.system(ELIBACC), String(decoding: message, as: UTF8.self))
        }
        return pid
    }
}
