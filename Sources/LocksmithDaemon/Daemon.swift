// The daemon's state machine: wait for "reboot needed", wait for the reboot window, take a slot,
// warn the users, reboot; give the slot back once the machine is up again. As in systemd's
// service.c: one state type (`Phase`, within `State`), one step per phase (`step`), and one
// function that changes state and owns every side effect of it (`transition`: coordinator.conf,
// the slot record, STATUS, the metrics, the journal). Every wait is a phase visible in the log and
// in sd_notify STATUS. It acts only through its `DaemonWorld`, time and waiting included, so its
// rules are unit-tested on a virtual clock (Tests/LocksmithDaemonTests) as well as run.
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
    /// Where the daemon is; changed only by `transition`.
    private(set) var state = State()
    private var lastStatus = ""
    /// What the metrics file says, rewritten when it changes.
    private(set) var metrics = Metrics()

    public init(settings: DaemonSettings, world: DaemonWorld, inputs: SharedInputs, machineID: String) {
        self.settings = settings
        self.world = world
        self.inputs = inputs
        self.machineID = machineID
        metrics.group = settings.group
        metrics.strategy = settings.strategy.rawValue
    }

    // MARK: The states

    /// The daemon's phases: each is one wait or one action, done by `step`. `recorded` is the
    /// state it belongs to, the one coordinator.conf, the metrics and the journal name (the
    /// original's four).
    enum Phase: Equatable {
        /// Before `run`: coordinator.conf says "starting" (the program wrote it).
        case starting
        /// After a reboot, with post-reboot hooks: they run (again, with backoff) until they all
        /// pass, the slot from before the reboot kept meanwhile.
        case checkingHealth
        /// The post-reboot hooks passed: the slot from before the reboot is given back.
        case givingBackSlot
        case waitingForUpdate
        case waitingForWindow
        /// No slot to take (REBOOT_STRATEGY=reboot): the pre-lock hooks say when.
        case askingPreLockHooks
        /// In the group's queue (or polling), pre-lock hooks run before each attempt.
        case takingSlot
        case runningPreRebootHooks
        /// Logged-in users are warned, and given LOCKSMITHD_REBOOT_BROADCAST_DELAY.
        case warningUsers
        /// Asking logind; again a minute later if its answer was lost and the machine is still up.
        case rebooting
        /// logind said yes: waiting to be stopped by the shutdown.
        case rebootRequested
        case stopped

        var recorded: DaemonState? {
            switch self {
            case .starting: return .starting
            case .checkingHealth, .givingBackSlot, .waitingForUpdate, .waitingForWindow: return .running
            case .askingPreLockHooks, .takingSlot, .runningPreRebootHooks, .warningUsers: return .rebootPlanned
            case .rebooting, .rebootRequested: return .rebooting
            case .stopped: return nil  // coordinator.conf keeps the last state (as the original)
            }
        }

        /// The retries a phase counts from zero each time it is entered. (Failed pre-reboot
        /// hooks count across attempts, until they pass.)
        var counts: [Retry] {
            switch self {
            case .checkingHealth: return [.healthCheck]
            case .givingBackSlot: return [.giveBack]
            case .askingPreLockHooks: return [.preLockHook]
            case .takingSlot: return [.preLockHook, .slotBusy, .slotError]
            default: return []
            }
        }
    }

    /// What is retried with backoff, each with its own count of attempts.
    enum Retry: Hashable { case preLockHook, slotBusy, slotError, preRebootHook, healthCheck, giveBack }

    /// A slot of this run that is not given back yet (and no reboot was asked for yet): taken,
    /// or perhaps taken (a lock request whose answer was lost).
    enum Slot { case none, maybe, taken }

    /// Everything the daemon's rules decide on, besides its inputs and the start-up slots.
    struct State {
        var phase = Phase.starting
        /// As coordinator.conf has it.
        var recorded = DaemonState.starting
        var slot = Slot.none
        var attempts: [Retry: Int] = [:]
        /// The first wait for an update gave the bus thread a moment (then the daemon went idle).
        var settled = false
        /// The last error taking a slot, logged once until another comes.
        var lastSlotError = ""
        /// Reboot requests whose answer was lost, this attempt.
        var answersLost = 0
    }

    /// The changes of this run's slot (`State.slot`) and of the slot record.
    enum SlotChange {
        /// A lock request's answer was lost: perhaps taken. Recorded (best effort), so that a
        /// crash or a reboot still gives it back.
        case maybe(key: String)
        /// Taken: recorded first, and kept only if the record was written.
        case taken(key: String)
        /// Held again without a word: a slot whose record failed, about to be given back; the
        /// reboot asked for again after a lost answer.
        case held
        /// A lost request that did not land after all: record cleared.
        case didNotLand
        /// Given back: record cleared.
        case givenBack
        /// Kept through the reboot: no longer this run's to give back; the record makes the next
        /// start give it back.
        case keptThroughReboot
        /// The slot from before this start was given back: record cleared.
        case staleGivenBack
    }

    /// The one function that changes the daemon's state, and owns the side effects: a new
    /// recorded state is written to coordinator.conf, the metrics and the journal; a slot change
    /// to the slot record and the metrics; `text` becomes the STATUS line (and a journal entry)
    /// when it changed. Entering a phase starts its retry counts from zero. Returns why the
    /// record of a slot taken could not be written (the slot is then not kept).
    @discardableResult
    func transition(to phase: Phase? = nil, slot change: SlotChange? = nil, status text: String? = nil) -> (any Error)? {
        var failure: (any Error)?
        switch change {
        case nil: break
        case .maybe(let key):
            state.slot = .maybe
            record((key, machineID))
        case .taken(let key):
            do {
                try world.recordSlot((key, machineID))
                state.slot = .taken
                updateMetrics { $0.slotHeld = true }
            } catch {
                state.slot = .taken
                failure = error
            }
        case .held: state.slot = .taken
        case .didNotLand:
            state.slot = .none
            record(nil)
        case .givenBack:
            state.slot = .none
            updateMetrics { $0.slotHeld = false }
            record(nil)
        case .keptThroughReboot: state.slot = .none
        case .staleGivenBack: record(nil)
        }
        if let phase, phase != state.phase {
            for retry in phase.counts { state.attempts[retry] = nil }
            if phase == .takingSlot { state.lastSlotError = "" }
            if phase == .rebooting { state.answersLost = 0 }
            state.phase = phase
            if let recorded = phase.recorded, recorded != state.recorded {
                state.recorded = recorded
                do {
                    try world.setState(recorded)
                } catch {
                    log(.warning, "\(error)")
                }
                updateMetrics {
                    if $0.state != recorded { $0.stateSince = world.clock.now() }
                    $0.state = recorded
                    if recorded == .running && !inputs.current.rebootNeeded { $0.rebootNeeded = false }
                }
                log(.info, "state \(recorded.rawValue)", ["LOCKSMITHD_STATE=\(recorded.rawValue)", "LOCKSMITHD_STRATEGY=\(settings.strategy)",
                                                         "LOCKSMITHD_GROUP=\(settings.group)", "LOCKSMITHD_MACHINE_ID=\(machineID)"])
            }
        }
        if let text { status(text) }
        return failure
    }

    /// Runs until asked to stop; returns the exit status.
    public func run() -> Int32 {
        transition(to: .waitingForUpdate, status: "waiting for an update")
        world.notify("READY=1")
        if settings.takesSlot, staleSlot != nil, world.hasHooks(.postReboot) {
            updateMetrics { $0.slotHeld = true }
            transition(to: .checkingHealth)
        }
        while !stopping && state.phase != .stopped { step() }
        transition(to: .stopped)
        return finish()
    }

    /// Asks the daemon to stop, from any thread: a wait on etcd in progress ends at once.
    public func requestStop() {
        clientLock.locked { madeClient?.cancel(true) }
        inputs.update { $0.stopRequested = true }
    }

    /// Does the current phase's one wait or action; each leads to the next phase by `transition`
    /// (or stays, to wait or try again). A stop is seen between steps.
    func step() {
        switch state.phase {
        case .checkingHealth: checkHealth()
        case .givingBackSlot: giveBackAfterHealthCheck()
        case .waitingForUpdate: waitForUpdate()
        case .waitingForWindow: waitForWindow()
        case .askingPreLockHooks: askPreLockHooks()
        case .takingSlot: takeSlot()
        case .runningPreRebootHooks: runPreRebootHooks()
        case .warningUsers: warnUsers()
        case .rebooting: reboot()
        case .rebootRequested: pause(milliseconds: nil)
        case .starting, .stopped: break  // (run leaves the one at once, and ends at the other)
        }
    }

    private func waitForUpdate() {
        status("waiting for an update")
        if !state.settled && !inputs.current.rebootNeeded {
            // Give the bus thread a moment to read the update engine's status first.
            pause(milliseconds: 1000) { $0.rebootNeeded }
            if !inputs.current.rebootNeeded && !stopping { world.idle() }
            state.settled = true
        }
        pause(milliseconds: nil) { $0.rebootNeeded }
        if stopping { return }
        updateMetrics { $0.rebootNeeded = true }
        let by = inputs.current.rebootNeededBy
        log(.notice, by.isEmpty ? "an update was applied and needs a reboot" : "a reboot is needed (\(by))")
        transition(to: .waitingForWindow)
    }

    /// Until the reboot window is open (at once without a window).
    private func waitForWindow() {
        switch windowNow() {
        case .open:
            transition(to: settings.takesSlot ? .takingSlot : .askingPreLockHooks, status: "reboot planned")
        case .unplaceable(let error):
            // Wait for the clock to be set right.
            status("cannot place the reboot window in the current time (\(error)); waiting")
            pause(milliseconds: 300_000)
        case .closed(let seconds, let window):
            let zone = window.zone.map { " \($0) time" } ?? ""
            status("waiting for reboot window \(window.text.start)\(zone), opens in \(Daemon.human(seconds))")
            // Wake at least every 5 minutes: the wall clock may jump.
            pause(milliseconds: Int(min(seconds, 300)) * 1000)
        }
    }

    /// No slot to take: the pre-lock hooks still decide whether now is the time.
    private func askPreLockHooks() {
        guard case .failed(let hook, let reason) = hooks(.preLock) else {
            transition(to: .runningPreRebootHooks)
            return
        }
        retry(.preLockHook) { status("not rebooting yet: pre-lock hook \(hook) says not now (\(reason)); asking again in \($0)") }
        if stopping { return }
        if !windowOpen {
            transition(to: .waitingForUpdate, status: "the reboot window closed while a pre-lock hook said not now")
        }
    }

    /// One attempt at taking a slot: with the queue's watch (or polling), errors retried with
    /// backoff. Only a slot this run took counts: "holder exists" is this run's own lock only
    /// after a lock request whose answer was lost; otherwise someone else holds a slot under
    /// this machine's id, and the daemon waits for it as for a full semaphore. Every error
    /// (etcd unreachable, a bad document, no libcurl) means "no slot", never "held".
    private func takeSlot() {
        let outcome: SlotOutcome?
        do {
            let client = try etcdClient()
            try giveBackStaleSlot(client)
            outcome = settings.slotWait == .watch ? try queueForSlot(client) : try pollForSlot(client)
        } catch {
            if stopping { return }
            updateMetrics { $0.lastErrorTime = world.clock.now() }
            let message = "\(error)"
            if message != state.lastSlotError {
                log(.warning, "cannot take a reboot slot: \(message); retrying")
                state.lastSlotError = message
            }
            retry(.slotError) { _ in status(Daemon.retryStatus(error, "take a slot", fleetLock: settings.usesFleetLock)) }
            return
        }
        switch outcome {
        case nil: return  // again
        case .stopped?: transition(to: .stopped)
        case .windowClosed?: transition(to: .waitingForUpdate, status: "the reboot window closed before a slot was free")
        case .held?:
            // The slot may have come late: reboot only inside the window.
            if !windowOpen {
                log(.notice, "the reboot window closed while waiting for a slot; giving the slot back")
                releaseTakenSlot()
                transition(to: .waitingForUpdate, status: "waiting for the next reboot window")
                return
            }
            transition(to: .runningPreRebootHooks)
        }
    }

    private func runPreRebootHooks() {
        guard case .failed(let hook, let reason) = hooks(.preReboot) else {
            state.attempts[.preRebootHook] = nil
            transition(to: .warningUsers)
            return
        }
        if stopping {
            // Stopped while the hook ran (it was stopped too): no failure of the hook's.
            releaseTakenSlot()
            return
        }
        retry(.preRebootHook) { wait in
            log(.error, "pre-reboot hook \(hook) failed (\(reason)): not rebooting; giving the slot back and trying again in \(wait)",
                ["LOCKSMITHD_HOOK=\(hook)", "LOCKSMITHD_HOOK_PHASE=pre-reboot"])
            releaseTakenSlot()
            transition(to: .waitingForUpdate, status: "pre-reboot hook \(hook) failed (\(reason)); trying again in \(wait)")
        }
    }

    private func warnUsers() {
        let delay = Int(settings.broadcastDelay / 1_000_000)
        let reached = world.broadcast(Daemon.warning(delayMilliseconds: delay))
        if reached > 0 {
            let text = Library.formatDuration(Int64(delay) * 1_000_000)
            log(.notice, "told \(reached) logged-in terminal(s) that the machine reboots in \(text)")
            status("rebooting in \(text): users were warned")
            pause(milliseconds: delay)
            if stopping { return }
        }
        // Rebooting from the request on: logind may stop the daemon before its answer comes.
        transition(to: .rebooting, status: "asking logind to reboot")
    }

    /// Reboot requests whose answer was lost, a minute apart, before the slot is given back.
    static let answersLostLimit = 10

    private func reboot() {
        do {
            try world.reboot()
        } catch let error as RebootAnswerLost where state.answersLost >= Daemon.answersLostLimit {
            // Still up ten minutes after the first lost answer: no reboot is under way, and a
            // logind that never answers must not hold the group's slot for ever.
            log(.error, "logind's answer to the reboot request was lost \(state.answersLost + 1) times and the machine is still up " +
                "(\(error)): giving the reboot slot back")
            state.answersLost = 0
            releaseTakenSlot()
            transition(to: .waitingForUpdate, status: "the reboot was not made; trying again")
            pause(milliseconds: world.backoff(0))
            return
        } catch let error as RebootAnswerLost {
            // Perhaps rebooting already: the slot stays this machine's (recorded), as after an
            // answer. Still up a minute later, it was not: ask again.
            if state.answersLost == 0 {
                log(.warning, "logind's answer to the reboot request was lost (\(error)): keeping the reboot slot, the reboot may be under way")
            }
            state.answersLost += 1
            transition(slot: .keptThroughReboot, status: "rebooting (logind's answer was lost; asking again in a minute if still up)")
            pause(milliseconds: 60_000)
            if stopping { return }
            transition(slot: .held)
            return
        } catch {
            log(.error, "the reboot was refused: \(error)")
            releaseTakenSlot()
            transition(to: .waitingForUpdate, status: "the reboot was refused; trying again")
            pause(milliseconds: world.backoff(0))
            return
        }
        // Kept through the reboot: the record makes the next start give it back.
        transition(to: .rebootRequested, slot: .keptThroughReboot, status: "rebooting")
        log(.notice, "reboot requested")
    }

    // MARK: The window

    /// Where the reboot window stands.
    enum WindowNow {
        /// Open (no window: always).
        case open
        case closed(opensIn: Int64, window: Window)
        /// The clock cannot be placed in the window (outside the years 1 to 9999).
        case unplaceable(any Error)
    }

    /// The one rule for "is the reboot window open?": a clock the window cannot be placed in
    /// is never an open window.
    func windowNow() -> WindowNow {
        guard let window = settings.window else { return .open }
        do {
            let seconds = try window.secondsToStart(now: world.clock.now())
            return seconds <= 0 ? .open : .closed(opensIn: seconds, window: window)
        } catch {
            return .unplaceable(error)
        }
    }

    var windowOpen: Bool {
        if case .open = windowNow() { return true }
        return false
    }

    /// How long a wait for a slot may last: until the open window closes (and a second), nil
    /// without a window; nil too when the window is not open (the caller's `windowOpen` says so).
    func windowLeftMilliseconds() -> Int? {
        guard let window = settings.window, windowOpen else { return nil }
        // An open window whose end cannot be placed: a second, then the window rule decides.
        guard let open = try? window.occurrence(now: world.clock.now()) else { return 1000 }
        return Int(open.end - world.clock.now()) * 1000 + 1000
    }

    // MARK: Taking the slot

    enum SlotOutcome { case held, windowClosed, stopped }

    /// Polling, as the original: the pre-lock hooks run before each attempt that may take a
    /// slot, not while the semaphore has none free for this machine. Nil to go round again.
    private func pollForSlot(_ client: SlotClient) throws -> SlotOutcome? {
        if state.slot == .none && world.hasHooks(.preLock) {
            // (A FleetLock server cannot be read: the hooks run before every attempt.)
            let current = settings.usesFleetLock ? nil : try client.read()  // nil: no semaphore yet (the lock makes it)
            noteSeen(current)
            if let document = current, document.available <= 0, !document.holders.contains(machineID) {
                waitingStatus(document)
                return waitForFreeSlot(client)
            }
            if case .failed(let hook, let reason) = hooks(.preLock) {
                retry(.preLockHook) { status("not taking a slot: pre-lock hook \(hook) says not now (\(reason)); asking again in \($0)") }
                return windowOpen ? nil : .windowClosed
            }
            state.attempts[.preLockHook] = nil
        }
        if try lock(client) { return .held }
        return waitForFreeSlot(client)
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
            ours = state.slot == .maybe
            if !ours { status(Daemon.someoneElsesSlot) }
        } catch let error as LocksmithFailure where error.code == EBUSY {
            // "semaphore is at 0" is checked before "holder exists" (as in the original), so a
            // full semaphore that lists this machine after a lost answer is ours.
            let seen: SemaphoreDocument? = (try? client.lastSeen()) ?? nil
            noteSeen(seen)
            ours = state.slot == .maybe && seen?.holders.contains(machineID) == true
            if !ours, let document = seen { waitingStatus(document) }
            // A FleetLock server shows no semaphore: its refusal says what there is to say.
            if !ours, seen == nil, settings.usesFleetLock { status("waiting for a slot: \(error.message)") }
        } catch let error as LocksmithFailure where error.code == ECONNREFUSED || error.code == ETIMEDOUT {
            answerLost(client)
            throw error
        }
        guard ours else {
            if state.slot == .maybe { transition(slot: .didNotLand) }
            return false
        }
        try tookSlot(client)
        return true
    }

    static let someoneElsesSlot = "waiting for a slot: this machine's id already holds one that locksmithd did not take (locksmithctl lock, or locksmith-run --id); waiting for it to be given back"

    /// The answer to a lock request may have been lost: the slot may be ours.
    private func answerLost(_ client: SlotClient) {
        if state.slot == .none { transition(slot: .maybe(key: client.key)) }
    }

    /// Waits in the group's fair queue for a slot: the waiter just ahead is watched, and at the
    /// head of the queue the pre-lock hooks run before each attempt to take a free slot. Returns
    /// .held, .windowClosed, or nil to go round again (after a declined turn or a timeout).
    func queueForSlot(_ client: SlotClient) throws -> SlotOutcome? {
        guard windowOpen else { return .windowClosed }
        let limit = windowLeftMilliseconds()
        var refusal: (hook: String, reason: String)?
        var windowClosed = false
        let outcome: Client.QueueOutcome
        do {
            outcome = try client.acquire(machineID, milliseconds: limit) { [self] ahead in
                ping()
                if stopping { return false }
                if !windowOpen {
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
            guard state.slot == .maybe else {
                status(Daemon.someoneElsesSlot)
                _ = try? client.wait(milliseconds: min(limit ?? 300_000, world.watchdogMilliseconds ?? 300_000))
                ping()
                return nil
            }
            try tookSlot(client)
            return .held
        } catch let error as LocksmithFailure where error.code == ECONNREFUSED || error.code == ETIMEDOUT {
            answerLost(client)
            throw error
        }
        switch outcome {
        case .taken:
            try tookSlot(client)
            return .held
        case .timedOut:
            return windowClosed ? .windowClosed : nil
        case .declined:
            if stopping { return .stopped }
            if windowClosed { return .windowClosed }
            if let (hook, reason) = refusal {
                retry(.preLockHook) { status("not taking a slot: pre-lock hook \(hook) says not now (\(reason)); asking again in \($0)") }
            }
            return nil
        }
    }

    /// After a slot was taken (or found ours after a lost answer). The record comes before the
    /// reboot: without it, the next start would not give the slot back. If it cannot be
    /// written, the slot is not kept.
    private func tookSlot(_ client: SlotClient) throws {
        if let error = transition(slot: .taken(key: client.key)) {
            releaseTakenSlot()
            throw LocksmithFailure(code: EIO, message: "took a slot but cannot record it, so gave it back: \(error)")
        }
        noteSeen((try? client.lastSeen()) ?? nil)
        log(.notice, "took a reboot slot")
    }

    /// Waits for the semaphore to change (or the backoff, with LOCKSMITHD_SLOT_WAIT=poll). Returns
    /// .windowClosed when the reboot window closes first, nil to try again.
    func waitForFreeSlot(_ client: SlotClient) -> SlotOutcome? {
        guard windowOpen else { return .windowClosed }
        let limit = min(300_000, windowLeftMilliseconds() ?? 300_000)
        if settings.slotWait == .poll {
            pause(milliseconds: min(world.backoff(state.attempts[.slotBusy, default: 0]), limit))
            state.attempts[.slotBusy, default: 0] += 1
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
            transition(slot: .staleGivenBack)
        }
    }

    /// Gives back the slot this run took (or may have taken), retrying a few times.
    func releaseTakenSlot() {
        guard state.slot != .none, let client = clientLock.locked({ madeClient }) else { return }
        // A stop cancels the client's requests (to end waits at once); giving the slot back must
        // go through all the same, also when the stop comes while it is under way (systemctl
        // stop during a pre-reboot hook: the hook fails on the same SIGTERM): a request the stop
        // cancelled is made again at once.
        for attempt in 0..<5 {
            client.cancel(false)
            do {
                try client.unlock(machineID)
                log(.notice, "gave the reboot slot back")
            } catch let error as LocksmithFailure where error.code == ENOENT {
                // Not held: a lost lock that never landed, or given back by hand.
            } catch let error as LocksmithFailure where error.code == ECANCELED && stopping && attempt < 4 {
                continue
            } catch {
                log(.warning, "cannot give the reboot slot back: \(error)")
                world.clock.sleep(milliseconds: 200 << attempt)
                continue
            }
            transition(slot: .givenBack)
            return
        }
    }

    func finish() -> Int32 {
        world.notify("STOPPING=1")
        if state.slot != .none {
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
        let clock = world.clock
        var lastPing = clock.monotonic()
        let outcome = world.runHooks(phase) { [self] in
            if let w = world.watchdogMilliseconds, clock.monotonic() - lastPing >= w {
                ping()
                lastPing = clock.monotonic()
            }
            return inputs.current.stopRequested
        }
        if case .failed = outcome {
            updateMetrics {
                $0.hookFailures[phase, default: 0] += 1
                $0.lastErrorTime = world.clock.now()
            }
        }
        return outcome
    }

    /// After a reboot: the slot from before it is given back only once the post-reboot hooks all
    /// pass. A machine that comes back broken keeps its slot, so the rollout stops here instead
    /// of breaking the next machine; the hooks are retried with backoff.
    private func checkHealth() {
        status("running the post-reboot hooks before giving the reboot slot back")
        switch hooks(.postReboot) {
        case .passed:
            updateMetrics { $0.heldForHealth = false }
            log(.notice, "the post-reboot hooks passed")
            transition(to: .givingBackSlot)
        case .failed(let hook, let reason):
            retry(.healthCheck) { wait in
                if !metrics.heldForHealth {
                    log(.error, "post-reboot hook \(hook) failed (\(reason)): keeping the reboot slot so that no other machine reboots until this one is healthy",
                        ["LOCKSMITHD_HOOK=\(hook)", "LOCKSMITHD_HOOK_PHASE=post-reboot"])
                }
                updateMetrics { $0.heldForHealth = true }
                status("holding the reboot slot: post-reboot health check \(hook) failed (\(reason)); trying again in \(wait)")
            }
        }
    }

    /// Gives back the slot from before the reboot, retrying errors with backoff.
    private func giveBackAfterHealthCheck() {
        guard staleSlot != nil else {
            transition(to: .waitingForUpdate)
            return
        }
        do {
            try giveBackStaleSlot(try etcdClient())
            updateMetrics { $0.slotHeld = false }
            transition(to: .waitingForUpdate)
        } catch {
            if stopping { return }
            updateMetrics { $0.lastErrorTime = world.clock.now() }
            retry(.giveBack) { _ in status(Daemon.retryStatus(error, "give the reboot slot back", fleetLock: settings.usesFleetLock)) }
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

    /// The one retry with backoff: the wait before attempt number `attempts[what]` is counted,
    /// said by `say` (given it as people say it: a status line, a log entry, a transition), then
    /// waited (a stop ends it).
    private func retry(_ what: Retry, _ say: (_ wait: String) -> Void) {
        let wait = world.backoff(state.attempts[what, default: 0])
        state.attempts[what, default: 0] += 1
        say(Daemon.human(Int64(wait / 1000)))
        pause(milliseconds: wait)
    }

    /// Waits up to `milliseconds` (nil: no limit) for `done`, or a stop; pings the watchdog.
    func pause(milliseconds: Int?, until done: (Inputs) -> Bool = { _ in false }) {
        let clock = world.clock
        let deadline = milliseconds.map { clock.monotonic() + $0 }
        while true {
            var step = deadline.map { $0 - clock.monotonic() }
            if let s = step, s <= 0 { return }
            if let w = world.watchdogMilliseconds { step = min(step ?? w, w) }
            let seen = clock.wait(inputs, milliseconds: step, until: done)
            ping()
            if seen.stopRequested || done(seen) { return }
        }
    }

    private func ping() {
        if world.watchdogMilliseconds != nil { world.notify("WATCHDOG=1") }
    }

    private func log(_ level: LogLevel, _ text: String, _ fields: [String] = []) { world.log(level, text, fields) }

    private func status(_ text: String) {
        guard text != lastStatus else { return }
        lastStatus = text
        log(.info, text)
        world.status(text)
    }

    /// "1st", "2nd", "3rd", "11th", "22nd".
    public static func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th"
        return "\(n)\(suffix)"
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
