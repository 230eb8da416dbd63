// The daemon's state machine: wait for "reboot needed", wait for the reboot window, take a slot,
// warn the users, reboot; give the slot back once the machine is up again. Every wait is a state
// visible in coordinator.conf, in the log and in sd_notify STATUS. It acts only through its
// `DaemonWorld`, so its rules are unit-tested (Tests/LocksmithDaemonTests) as well as run.
import Glibc
import Locksmith

public final class Daemon: @unchecked Sendable {  // requestStop() is called from the signal thread
    public let settings: DaemonSettings
    let world: DaemonWorld
    public let inputs: SharedInputs
    public let machineID: String
    /// The etcd client (strategy etcd-lock), made when first needed: libcurl is loaded then, not
    /// while the daemon only waits for an update. A client that cannot be made is an error like
    /// any other: it never counts as holding a slot. Shared with the signal thread, which
    /// cancels it.
    private let clientLock = Mutex()
    private var madeClient: SlotClient?
    /// A slot of this run that is not given back yet (and no reboot was asked for yet): taken,
    /// or perhaps taken (a lock request whose answer was lost).
    enum Slot { case none, maybe, taken }
    private(set) var slot = Slot.none
    /// The slot left from before, to give back before taking one (from the slot record at
    /// start-up); nil once done, or when there is none.
    public var staleSlot: (key: String, id: String)?
    /// The machine's own slot in the configured group (its id's), when the record names another:
    /// given back at every start, as the original did, since a slot held under the machine id
    /// means "this machine is going down" (`locksmithctl lock && reboot` by hand). Not held back
    /// for the post-reboot hooks: only the slot this daemon recorded is. Nil once done.
    public var machineSlot: (key: String, id: String)?
    /// Stops the start-up helper that gives back the stale slot, if it still runs; true if it
    /// finished that work (the program sets it; the default has no helper).
    public var staleHelperDone: () -> Bool = { false }
    private var lastStatus = ""
    /// What the metrics file says, rewritten when it changes.
    private(set) var metrics = Metrics()
    /// Failed runs of pre-reboot hooks in a row (for the backoff).
    private var preRebootFailures = 0

    public init(settings: DaemonSettings, world: DaemonWorld, inputs: SharedInputs, machineID: String) {
        self.settings = settings
        self.world = world
        self.inputs = inputs
        self.machineID = machineID
        metrics.group = settings.group
        metrics.strategy = settings.strategy
    }

    // MARK: The states

    /// Runs until asked to stop; returns the exit status.
    public func run() -> Int32 {
        setState(.running, "waiting for an update")
        world.notify("READY=1")
        if settings.takesSlot, staleSlot != nil, world.hasHooks(.postReboot) {
            healthGate()
        }
        var settled = false
        while !stopping {
            status("waiting for an update")
            if !settled && !inputs.current.rebootNeeded {
                // Give the bus thread a moment to read the update engine's status first.
                pause(milliseconds: 1000) { $0.rebootNeeded }
                if !inputs.current.rebootNeeded && !stopping { world.idle() }
                settled = true
            }
            pause(milliseconds: nil) { $0.rebootNeeded }
            if stopping { break }
            updateMetrics { $0.rebootNeeded = true }
            let by = inputs.current.rebootNeededBy
            log(.notice, by.isEmpty ? "an update was applied and needs a reboot" : "a reboot is needed (\(by))")
            if rebootOnce() { break }
        }
        return finish()
    }

    /// Asks the daemon to stop, from any thread: a wait on etcd in progress ends at once.
    public func requestStop() {
        clientLock.locked { madeClient?.cancel(true) }
        inputs.update { $0.stopRequested = true }
    }

    /// One attempt at rebooting: window, slot, warning, logind. True once a reboot was asked for
    /// (or a stop), false to try again.
    func rebootOnce() -> Bool {
        guard waitForWindow() else { return true }
        setState(.rebootPlanned, "reboot planned")
        if !settings.takesSlot {
            // No slot to take: the pre-lock hooks still decide whether now is the time.
            var attempt = 0
            while case .failed(let hook, let reason) = hooks(.preLock) {
                status("not rebooting yet: pre-lock hook \(hook) says not now (\(reason)); asking again in \(Daemon.human(Int64(world.backoff(attempt) / 1000)))")
                pause(milliseconds: world.backoff(attempt)) { _ in false }
                attempt += 1
                if stopping { return true }
                if let window = settings.window, (try? window.secondsToStart(now: world.now())) ?? 1 > 0 {
                    setState(.running, "the reboot window closed while a pre-lock hook said not now")
                    return false
                }
            }
        }
        if settings.takesSlot {
            switch acquireSlot() {
            case .stopped: return true
            case .windowClosed:
                setState(.running, "the reboot window closed before a slot was free")
                return false
            case .held: break
            }
            // The slot may have come late: reboot only inside the window.
            if let window = settings.window, (try? window.secondsToStart(now: world.now())) ?? 1 > 0 {
                log(.notice, "the reboot window closed while waiting for a slot; giving the slot back")
                releaseTakenSlot()
                setState(.running, "waiting for the next reboot window")
                return false
            }
        }
        if stopping { return true }
        if case .failed(let hook, let reason) = hooks(.preReboot) {
            if stopping {
                // Stopped while the hook ran (it was stopped too): no failure of the hook's.
                releaseTakenSlot()
                return true
            }
            let wait = world.backoff(preRebootFailures)
            preRebootFailures += 1
            log(.error, "pre-reboot hook \(hook) failed (\(reason)): not rebooting; giving the slot back and trying again in \(Daemon.human(Int64(wait / 1000)))",
                ["LOCKSMITHD_HOOK=\(hook)", "LOCKSMITHD_HOOK_PHASE=pre-reboot"])
            releaseTakenSlot()
            setState(.running, "pre-reboot hook \(hook) failed (\(reason)); trying again in \(Daemon.human(Int64(wait / 1000)))")
            pause(milliseconds: wait) { _ in false }
            return stopping
        }
        preRebootFailures = 0
        let delay = Int(settings.broadcastDelay / 1_000_000)
        let reached = world.broadcast(Daemon.warning(delayMilliseconds: delay))
        if reached > 0 {
            let text = Library.formatDuration(Int64(delay) * 1_000_000)
            log(.notice, "told \(reached) logged-in terminal(s) that the machine reboots in \(text)")
            status("rebooting in \(text): users were warned")
            pause(milliseconds: delay) { _ in false }
            if stopping { return true }
        }
        // Rebooting from the request on: logind may stop the daemon before its answer comes.
        setState(.rebooting, "asking logind to reboot")
        var lost = 0
        while true {
            do {
                try world.reboot()
            } catch let error as RebootAnswerLost {
                // Perhaps rebooting already: the slot stays this machine's (recorded), as after an
                // answer. Still up a minute later, it was not: ask again.
                if lost == 0 {
                    log(.warning, "logind's answer to the reboot request was lost (\(error)): keeping the reboot slot, the reboot may be under way")
                }
                lost += 1
                slot = .none
                status("rebooting (logind's answer was lost; asking again in a minute if still up)")
                pause(milliseconds: 60_000) { _ in false }
                if stopping { return true }
                slot = .taken
                continue
            } catch {
                log(.error, "the reboot was refused: \(error)")
                releaseTakenSlot()
                setState(.running, "the reboot was refused; trying again")
                pause(milliseconds: world.backoff(0)) { _ in false }
                return stopping
            }
            break
        }
        slot = .none  // kept through the reboot: the record makes the next start give it back
        status("rebooting")
        log(.notice, "reboot requested")
        pause(milliseconds: nil) { _ in false }
        return true
    }

    /// Waits until the reboot window is open (at once without a window). False if stopped.
    func waitForWindow() -> Bool {
        guard let window = settings.window else { return true }
        while !stopping {
            let seconds: Int64
            do {
                seconds = try window.secondsToStart(now: world.now())
            } catch {
                // A clock the window cannot be placed in (outside the years 1 to 9999) is not an
                // open window: wait for the clock to be set right.
                status("cannot place the reboot window in the current time (\(error)); waiting")
                pause(milliseconds: 300_000) { _ in false }
                continue
            }
            if seconds <= 0 { return true }
            let zone = window.zone.map { " \($0) time" } ?? ""
            status("waiting for reboot window \(window.text.start)\(zone), opens in \(Daemon.human(seconds))")
            // Wake at least every 5 minutes: the wall clock may jump.
            pause(milliseconds: Int(min(seconds, 300)) * 1000) { _ in false }
        }
        return false
    }

    enum SlotOutcome { case held, windowClosed, stopped }

    /// Takes a slot, waiting for one with the watch (or backoff polling), retrying errors with
    /// backoff. Only a slot this run took counts: "holder exists" is this run's own lock only
    /// after a lock request whose answer was lost; otherwise someone else holds a slot under
    /// this machine's id, and the daemon waits for it as for a full semaphore. Every error
    /// (etcd unreachable, a bad document, no libcurl) means "no slot", never "held".
    func acquireSlot() -> SlotOutcome {
        var busyAttempt = 0, errorAttempt = 0, hookAttempt = 0
        var lastError = ""
        while !stopping {
            do {
                let client = try etcdClient()
                try giveBackStaleSlot(client)
                if settings.slotWait == "watch" {
                    if let outcome = try queueForSlot(client, hookAttempt: &hookAttempt) { return outcome }
                    continue
                }
                // Polling, as the original: the pre-lock hooks run before each attempt that may
                // take a slot, not while the
                // semaphore has none free for this machine.
                if slot == .none && world.hasHooks(.preLock) {
                    // (A FleetLock server cannot be read: the hooks run before every attempt.)
                    let current = settings.usesFleetLock ? nil : try client.read()  // nil: no semaphore yet (the lock makes it)
                    noteSeen(current)
                    if let document = current, document.available <= 0, !document.holders.contains(machineID) {
                        waitingStatus(document)
                        if let outcome = waitForFreeSlot(client, attempt: &busyAttempt) { return outcome }
                        continue
                    }
                    if case .failed(let hook, let reason) = hooks(.preLock) {
                        let wait = world.backoff(hookAttempt)
                        hookAttempt += 1
                        status("not taking a slot: pre-lock hook \(hook) says not now (\(reason)); asking again in \(Daemon.human(Int64(wait / 1000)))")
                        pause(milliseconds: wait) { _ in false }
                        if let window = settings.window, let open = try? window.occurrence(now: world.now()),
                           open.start > world.now() || open.end < world.now() {
                            return .windowClosed
                        }
                        continue
                    }
                    hookAttempt = 0
                }
                if try lock(client) { return .held }
                if let outcome = waitForFreeSlot(client, attempt: &busyAttempt) { return outcome }
            } catch {
                if stopping { break }
                updateMetrics { $0.lastErrorTime = world.now() }
                let message = "\(error)"
                if message != lastError { log(.warning, "cannot take a reboot slot: \(message); retrying"); lastError = message }
                status(Daemon.retryStatus(error, "take a slot", fleetLock: settings.usesFleetLock))
                pause(milliseconds: world.backoff(errorAttempt)) { _ in false }
                errorAttempt += 1
            }
        }
        return .stopped
    }

    /// One lock request: true once the slot is this run's and recorded, false when there is
    /// none to take now. A request whose answer was lost leaves the slot "maybe" ours (recorded,
    /// so that a crash or reboot still gives it back) and throws.
    func lock(_ client: SlotClient) throws -> Bool {
        let ours: Bool
        do {
            try client.lock(machineID)
            ours = true
        } catch let error as LocksmithFailure where error.code == EEXIST {
            ours = slot == .maybe
            if !ours { status("waiting for a slot: this machine's id already holds one that locksmithd did not take (locksmithctl lock, or locksmith-run --id); waiting for it to be given back") }
        } catch let error as LocksmithFailure where error.code == EBUSY {
            // "semaphore is at 0" is checked before "holder exists" (as in the original), so a
            // full semaphore that lists this machine after a lost answer is ours.
            let seen: SemaphoreDocument? = (try? client.lastSeen()) ?? nil
            noteSeen(seen)
            ours = slot == .maybe && seen?.holders.contains(machineID) == true
            if !ours, let document = seen { waitingStatus(document) }
            // A FleetLock server shows no semaphore: its refusal says what there is to say.
            if !ours, seen == nil, settings.usesFleetLock { status("waiting for a slot: \(error.message)") }
        } catch let error as LocksmithFailure where error.code == ECONNREFUSED || error.code == ETIMEDOUT {
            if slot == .none {
                slot = .maybe
                record((client.key, machineID))
            }
            throw error
        }
        guard ours else {
            if slot == .maybe {
                // The lost request did not land after all.
                slot = .none
                record(nil)
            }
            return false
        }
        _ = try tookSlot(client)
        return true
    }

    /// Waits in the group's fair queue for a slot: the waiter just ahead is watched, and at the
    /// head of the queue the pre-lock hooks run before each attempt to take a free slot. Returns
    /// .held, .windowClosed, or nil to go round again (after a declined turn or a timeout).
    func queueForSlot(_ client: SlotClient, hookAttempt: inout Int) throws -> SlotOutcome? {
        var limit: Int?
        if let window = settings.window, let open = try? window.occurrence(now: world.now()) {
            let now = world.now()
            if open.start > now || open.end < now { return .windowClosed }
            limit = Int(open.end - now) * 1000 + 1000
        }
        var refusal: (hook: String, reason: String)?
        var windowClosed = false
        let outcome: Client.QueueOutcome
        do {
            outcome = try client.acquire(machineID, milliseconds: limit) { [self] ahead in
                ping()
                if stopping { return false }
                if let window = settings.window, (try? window.secondsToStart(now: world.now())) ?? 1 > 0 {
                    windowClosed = true
                    return false
                }
                if ahead > 0 {
                    status("waiting for a slot: \(Daemon.ordinal(ahead + 1)) in line")
                    return true
                }
                if ahead < 0 {
                    // Still waiting: at the head, the semaphore as last seen says why.
                    if let document = (try? client.lastSeen()) ?? nil, document.available <= 0, !document.holders.contains(machineID) {
                        noteSeen(document)
                        waitingStatus(document)
                    }
                    return true
                }
                guard world.hasHooks(.preLock) else { return true }
                if case .failed(let hook, let reason) = hooks(.preLock) {
                    refusal = (hook, reason)
                    return false
                }
                return true
            }
        } catch let error as LocksmithFailure where error.code == EEXIST {
            guard slot == .maybe else {
                status("waiting for a slot: this machine's id already holds one that locksmithd did not take (locksmithctl lock, or locksmith-run --id); waiting for it to be given back")
                _ = try? client.wait(milliseconds: min(limit ?? 300_000, world.watchdogMilliseconds ?? 300_000))
                ping()
                return nil
            }
            return try tookSlot(client)
        } catch let error as LocksmithFailure where error.code == ECONNREFUSED || error.code == ETIMEDOUT {
            // The answer to a lock request may have been lost: the slot may be ours.
            if slot == .none {
                slot = .maybe
                record((client.key, machineID))
            }
            throw error
        }
        switch outcome {
        case .taken:
            return try tookSlot(client)
        case .timedOut:
            return windowClosed ? .windowClosed : nil
        case .declined:
            if stopping { return .stopped }
            if windowClosed { return .windowClosed }
            if let (hook, reason) = refusal {
                let wait = world.backoff(hookAttempt)
                hookAttempt += 1
                status("not taking a slot: pre-lock hook \(hook) says not now (\(reason)); asking again in \(Daemon.human(Int64(wait / 1000)))")
                pause(milliseconds: wait) { _ in false }
            }
            return nil
        }
    }

    /// After a slot was taken (or found ours after a lost answer). The record comes before the
    /// reboot: without it, the next start would not give the slot back. If it cannot be
    /// written, the slot is not kept.
    private func tookSlot(_ client: SlotClient) throws -> SlotOutcome {
        do {
            try world.recordSlot((client.key, machineID))
        } catch {
            slot = .taken
            releaseTakenSlot()
            throw LocksmithFailure(code: EIO, message: "took a slot but cannot record it, so gave it back: \(error)")
        }
        slot = .taken
        noteSeen((try? client.lastSeen()) ?? nil)
        updateMetrics { $0.slotHeld = true }
        log(.notice, "took a reboot slot")
        return .held
    }

    /// "1st", "2nd", "3rd", "11th", "22nd".
    public static func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th"
        return "\(n)\(suffix)"
    }

    /// Waits for the semaphore to change (or the backoff, with LOCKSMITHD_SLOT_WAIT=poll). Returns
    /// .windowClosed when the reboot window closes first, nil to try again.
    func waitForFreeSlot(_ client: SlotClient, attempt: inout Int) -> SlotOutcome? {
        var limit = 300_000
        if let window = settings.window, let open = try? window.occurrence(now: world.now()) {
            let now = world.now()
            let left = open.end - now
            if open.start > now || left < 0 { return .windowClosed }
            limit = min(limit, Int(left) * 1000 + 1000)
        }
        if settings.slotWait == "poll" {
            pause(milliseconds: min(world.backoff(attempt), limit)) { _ in false }
            attempt += 1
        } else {
            _ = try? client.wait(milliseconds: min(limit, world.watchdogMilliseconds ?? limit))
            ping()
        }
        return nil
    }

    /// Best effort: the record says whether this run may hold a slot (a failure is logged; the
    /// slot itself is handled by the caller).
    private func record(_ held: (key: String, id: String)?) {
        do {
            try world.recordSlot(held)
        } catch {
            log(.warning, "\(error)")
        }
    }

    /// Before taking a slot: make sure the slot recorded from before (normally from before the
    /// last reboot) was given back. The helper process started at start-up normally did it long
    /// ago; if it is still retrying (etcd unreachable), it is stopped and the work is done here.
    func giveBackStaleSlot(_ client: SlotClient) throws {
        guard staleSlot != nil || machineSlot != nil else { return }
        if staleHelperDone() {
            staleSlot = nil
            machineSlot = nil
            return
        }
        func giveBack(_ target: (key: String, id: String)) throws {
            let owner = target.key == client.key ? client : try world.makeClient(target.key)
            try Daemon.giveBack(owner, id: target.id, fleetLock: settings.usesFleetLock, log: world.log)
        }
        if let own = machineSlot {
            try giveBack(own)
            machineSlot = nil
        }
        if let stale = staleSlot {
            try giveBack(stale)
            staleSlot = nil
            record(nil)
        }
    }

    /// Gives back the slot this run took (or may have taken), retrying a few times.
    func releaseTakenSlot() {
        guard slot != .none, let client = clientLock.locked({ madeClient }) else { return }
        // A stop cancels the client's requests (to end waits at once); giving the slot back must
        // go through all the same.
        client.cancel(false)
        for attempt in 0..<5 {
            do {
                try client.unlock(machineID)
                log(.notice, "gave the reboot slot back")
            } catch let error as LocksmithFailure where error.code == ENOENT {
                // Not held: a lost lock that never landed, or given back by hand.
            } catch {
                log(.warning, "cannot give the reboot slot back: \(error)")
                usleep(UInt32(200_000 << attempt))
                continue
            }
            slot = .none
            updateMetrics { $0.slotHeld = false }
            record(nil)
            return
        }
    }

    func finish() -> Int32 {
        world.notify("STOPPING=1")
        if slot != .none {
            // Asked to stop after taking a slot and before asking for a reboot: give it back.
            // The stop cancelled the client's requests; this one must go through.
            clientLock.locked { madeClient?.cancel(false) }
            releaseTakenSlot()
        }
        log(.info, "stopped")
        return 0
    }

    // MARK: Hooks and the health gate

    /// Runs a phase's hooks, counting a failure.
    func hooks(_ phase: HookPhase) -> HookOutcome {
        // A hook may run for minutes (LOCKSMITHD_HOOK_TIMEOUT): the watchdog is pinged meanwhile,
        // as often as it wants, from the runner's checks for a stop (four a second).
        var lastPing = monotonicMilliseconds()
        let outcome = world.runHooks(phase) { [self] in
            if let w = world.watchdogMilliseconds, monotonicMilliseconds() - lastPing >= w {
                ping()
                lastPing = monotonicMilliseconds()
            }
            return inputs.current.stopRequested
        }
        if case .failed = outcome {
            updateMetrics {
                $0.hookFailures[phase, default: 0] += 1
                $0.lastErrorTime = world.now()
            }
        }
        return outcome
    }

    /// After a reboot: the slot from before it is given back only once the post-reboot hooks all
    /// pass. A machine that comes back broken keeps its slot, so the rollout stops here instead
    /// of breaking the next machine; the hooks are retried with backoff.
    func healthGate() {
        var attempt = 0
        updateMetrics { $0.slotHeld = true }
        while !stopping {
            status("running the post-reboot hooks before giving the reboot slot back")
            switch hooks(.postReboot) {
            case .passed:
                updateMetrics { $0.heldForHealth = false }
                log(.notice, "the post-reboot hooks passed")
                giveBackAfterHealthCheck()
                return
            case .failed(let hook, let reason):
                let wait = world.backoff(attempt)
                attempt += 1
                if !metrics.heldForHealth {
                    log(.error, "post-reboot hook \(hook) failed (\(reason)): keeping the reboot slot so that no other machine reboots until this one is healthy",
                        ["LOCKSMITHD_HOOK=\(hook)", "LOCKSMITHD_HOOK_PHASE=post-reboot"])
                }
                updateMetrics { $0.heldForHealth = true }
                status("holding the reboot slot: post-reboot health check \(hook) failed (\(reason)); trying again in \(Daemon.human(Int64(wait / 1000)))")
                pause(milliseconds: wait) { _ in false }
            }
        }
    }

    /// Gives back the slot from before the reboot, retrying errors with backoff.
    private func giveBackAfterHealthCheck() {
        var attempt = 0
        while !stopping, staleSlot != nil {
            do {
                try giveBackStaleSlot(try etcdClient())
                updateMetrics { $0.slotHeld = false }
                return
            } catch {
                if stopping { return }
                updateMetrics { $0.lastErrorTime = world.now() }
                status(Daemon.retryStatus(error, "give the reboot slot back", fleetLock: settings.usesFleetLock))
                pause(milliseconds: world.backoff(attempt)) { _ in false }
                attempt += 1
            }
        }
    }

    /// Changes the metrics, and rewrites the file if they changed.
    private func updateMetrics(_ change: (inout Metrics) -> Void) {
        var changed = metrics
        change(&changed)
        guard changed != metrics else { return }
        metrics = changed
        world.writeMetrics?(metrics.render())
    }

    /// The status line while the semaphore has no free slot.
    private func waitingStatus(_ document: SemaphoreDocument) {
        // A few holders are news; thousands would make every status line and log entry huge.
        let more = document.holders.count > 10 ? " and \(document.holders.count - 10) more" : ""
        let held = document.holders.isEmpty ? "" : ", held by " + document.holders.prefix(10).joined(separator: ", ") + more
        status("waiting for a slot: \(max(document.available, 0)) of \(document.max) free\(held)")
    }

    /// Notes the group's semaphore as last seen, for the metrics.
    private func noteSeen(_ document: SemaphoreDocument?) {
        guard let document else { return }
        updateMetrics {
            $0.freeSlots = max(document.available, 0)
            $0.maxSlots = document.max
        }
    }

    // MARK: Helpers

    private func etcdClient() throws -> SlotClient {
        try clientLock.locked {
            if let madeClient { return madeClient }
            do {
                let made = try world.makeClient(nil)
                if inputs.current.stopRequested { made.cancel(true) }
                madeClient = made
                return made
            } catch let error as LocksmithFailure {
                throw LocksmithFailure(code: error.code, message: "cannot make the etcd client: \(error.message)")
            }
        }
    }

    var stopping: Bool { inputs.current.stopRequested }

    /// Waits up to `milliseconds` (nil: no limit) for `done`, or a stop; pings the watchdog.
    func pause(milliseconds: Int?, until done: @escaping (Inputs) -> Bool) {
        let deadline = milliseconds.map { monotonicMilliseconds() + $0 }
        while true {
            var step = deadline.map { $0 - monotonicMilliseconds() }
            if let s = step, s <= 0 { return }
            if let w = world.watchdogMilliseconds { step = min(step ?? w, w) }
            let seen = inputs.wait(milliseconds: step, until: done)
            ping()
            if seen.stopRequested || done(seen) { return }
        }
    }

    private func ping() {
        if world.watchdogMilliseconds != nil { world.notify("WATCHDOG=1") }
    }

    private func log(_ level: LogLevel, _ text: String, _ fields: [String] = []) { world.log(level, text, fields) }

    private func setState(_ state: DaemonState, _ text: String) {
        do {
            try world.setState(state)
        } catch {
            log(.warning, "\(error)")
        }
        updateMetrics {
            if $0.state != state { $0.stateSince = world.now() }
            $0.state = state
            if state == .running && !inputs.current.rebootNeeded { $0.rebootNeeded = false }
        }
        log(.info, "state \(state.rawValue)", ["LOCKSMITHD_STATE=\(state.rawValue)", "LOCKSMITHD_STRATEGY=\(settings.strategy)",
                                              "LOCKSMITHD_GROUP=\(settings.group)", "LOCKSMITHD_MACHINE_ID=\(machineID)"])
        status(text)
    }

    private func status(_ text: String) {
        guard text != lastStatus else { return }
        lastStatus = text
        log(.info, text)
        world.status(text)
    }

    // MARK: Rules without state

    /// "3h12m", "45m", "30s": a wait as people say it.
    public static func human(_ seconds: Int64) -> String {
        let h = seconds / 3600, m = (seconds / 60) % 60, s = seconds % 60
        if h > 0 { return "\(h)h\(m)m" }
        if m > 0 { return "\(m)m" }
        return "\(s)s"
    }

    /// The warning to logged-in users: "System reboot in 5 minutes!" for the default delay, the
    /// real delay otherwise.
    public static func warning(delayMilliseconds: Int) -> String {
        let seconds = (delayMilliseconds + 999) / 1000
        if seconds <= 0 { return "System reboot now!" }
        let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60)
        func unit(_ n: Int, _ name: String) -> String? { n == 0 ? nil : "\(n) \(name)\(n == 1 ? "" : "s")" }
        let parts = [unit(h, "hour"), unit(m, "minute"), unit(s, "second")].compactMap { $0 }
        return "System reboot in \(parts.joined(separator: " "))!"
    }

    /// The STATUS line while an operation on the slot is retried: what stands in the way, in etcd
    /// or (`fleetLock`) at the FleetLock server.
    public static func retryStatus(_ error: any Error, _ what: String, fleetLock: Bool = false) -> String {
        let server = fleetLock ? "the FleetLock server" : "etcd"
        switch (error as? LocksmithFailure)?.code {
        case EBADMSG?: return "the semaphore in etcd is not valid, cannot \(what); retrying until it is repaired"
        case EACCES?: return "\(server) refused access, cannot \(what); retrying"
        case ELIBACC?: return "libcurl cannot be loaded, cannot \(what); retrying"
        case EINVAL? where fleetLock, EPROTO? where fleetLock:
            return "\(server) refused the request, cannot \(what); retrying (\(error))"
        default: return "cannot reach \(server) to \(what); retrying"
        }
    }

    /// The machine's own slot in `group` (its id's), to give back at start-up besides the recorded
    /// one (`staleTarget`); nil when it is that one, or the group has no key.
    public static func machineTarget(group: String, machineID: String, besides recorded: (key: String, id: String)?) -> (key: String, id: String)? {
        guard let key = try? Library.groupKey(group) else { return nil }
        if let recorded, recorded.key == key && recorded.id == machineID { return nil }
        return (key, machineID)
    }

    /// The slot to give back at start-up, from the record: the recorded one; on a first start
    /// (no record yet: a machine new to locksmith-swift, perhaps upgraded from the original,
    /// which left no record) the machine id's slot in the configured group, as the original
    /// always did; none otherwise. A record that cannot be read is reported and left alone.
    public static func staleTarget(_ record: () throws -> Library.SlotRecord, group: String, machineID: String,
                                   log: (LogLevel, String, [String]) -> Void) -> (key: String, id: String)? {
        do {
            switch try record() {
            case .missing: return (try? Library.groupKey(group)).map { ($0, machineID) }
            case .held(let key, let id): return (key, id)
            case .notHeld: return nil
            }
        } catch {
            log(.warning, "\(error): not giving back any slot at start-up (the next slot taken replaces the file)", [])
            return nil
        }
    }

    /// Gives back `id`'s slot; "holder does not exist" counts as done. A FleetLock server's
    /// steady-state call succeeds whether or not the id held a slot, and the log says so.
    public static func giveBack(_ client: SlotClient, id: String, fleetLock: Bool = false, log: (LogLevel, String, [String]) -> Void) throws {
        do {
            try client.unlock(id)
            log(.notice, fleetLock ? "told the FleetLock server this machine is up (steady-state): the slot from before its reboot, if it still held one, is free again"
                                   : "gave back the reboot slot this machine held from before its reboot", [])
        } catch let error as LocksmithFailure where error.code == ENOENT {
        }
    }
}

/// A pthread mutex for what the signal thread and the main thread share.
final class Mutex: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
