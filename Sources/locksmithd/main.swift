// locksmithd: reboots this machine after an update, when its reboot window is open and, with
// REBOOT_STRATEGY=etcd-lock, once it holds a slot of its group's semaphore in etcd (fleetlock:
// through a FleetLock server).
import CGlibc
import CSystemd
import Glibc
import Locksmith
import LocksmithBus
import LocksmithDaemon

let usage = """
    Usage: locksmithd [-version] [-help]

    locksmithd reboots this machine after the update engine has applied an update: within the
    reboot window, if one is set, and with REBOOT_STRATEGY=etcd-lock only while it holds a slot of
    its group's semaphore in etcd (see locksmithctl), with fleetlock only once a FleetLock server
    granted one. It is configured by the environment and by these files (later files win, the
    environment wins over files):

    \(Configuration.files.map { "  " + $0 }.joined(separator: "\n"))

      REBOOT_STRATEGY                    etcd-lock, fleetlock, reboot (default) or off
      LOCKSMITHD_FLEETLOCK_URL           fleetlock: the FleetLock server's base URL (before /v1/);
                                         the group is LOCKSMITHD_GROUP (none: FleetLock's default)
      LOCKSMITHD_FLEETLOCK_ID            fleetlock: the id to take slots under (default: machine id)
      LOCKSMITHD_REBOOT_WINDOW_START     HH:MM or Day HH:MM (also REBOOT_WINDOW_START)
      LOCKSMITHD_REBOOT_WINDOW_LENGTH    a duration such as 1h30m (also REBOOT_WINDOW_LENGTH)
      LOCKSMITHD_REBOOT_WINDOW_TZ        read the window in this IANA zone (default: local time)
      LOCKSMITHD_ENDPOINT, LOCKSMITHD_GROUP, LOCKSMITHD_ETCD_CAFILE, LOCKSMITHD_ETCD_CERTFILE,
      LOCKSMITHD_ETCD_KEYFILE, LOCKSMITHD_ETCD_USERNAME, LOCKSMITHD_ETCD_PASSWORD,
      LOCKSMITHD_ETCD_PASSWORD_FILE, LOCKSMITHD_ETCD_API, LOCKSMITHD_TIMEOUT
                                         etcd settings, as locksmithctl's flags
      LOCKSMITHD_REBOOT_BROADCAST_DELAY  how long users are warned before the reboot (default 5m)
      LOCKSMITHD_SLOT_WAIT               watch (default: in the group's fair queue, with etcd's
                                         watch) or poll (backoff, as the original; always with
                                         fleetlock: 5s doubling to 5m, then every 5m)
      LOCKSMITHD_QUEUE_TTL               how long a dead waiter's queue entry lasts (default 60s)
      LOCKSMITHD_UTMP                    the utmp file of logged-in users (default /var/run/utmp)
      LOCKSMITHD_REBOOT_SOURCE           where "reboot needed" comes from: auto (default: the
                                         update engine, or /run/reboot-required), update-engine,
                                         file[:PATH] or command:CMDLINE (exit 0 no, 1 yes)
      LOCKSMITHD_REBOOT_CHECK_INTERVAL   how often a command source runs (default 1h)
      LOCKSMITHD_HOOK_TIMEOUT            how long one hook may run (default 10m); hooks are the
                                         executables in /etc/locksmith/pre-lock.d,
                                         pre-reboot.d and post-reboot.d
      LOCKSMITHD_METRICS_FILE            a Prometheus text file to keep (default none)
      LOCKSMITH_ROOT                     read /etc/machine-id, the update.conf files, utmp and
                                         /dev, and write /run/update-engine and /run/locksmith,
                                         under this directory

    """

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains(where: { ["-version", "--version"].contains($0) }) {
    print("locksmithd version \(Library.version)")
    exit(0)
}
if arguments.contains(where: { ["-h", "-help", "--help"].contains($0) }) {
    print(usage, terminator: "")
    exit(0)
}
if let unknown = arguments.first {
    writeStandardError("locksmithd: unknown argument \(Library.jsonQuoted(unknown))\n\(usage)")
    exit(2)
}

// Under systemd (its journal on our stderr), log to the journal with priorities and fields.
Log.toJournal = getenv("JOURNAL_STREAM") != nil

/// The exit status of a configuration the daemon cannot use (EX_CONFIG, which systemd calls
/// "CONFIG"): the unit's RestartPreventExitStatus=78 then leaves it failed, once, with the
/// setting named in the journal, instead of restarting it every 10 s for ever.
let exitConfiguration: Int32 = 78

// The settings, read and checked by liblocksmith: environment over the update.conf files.
let root = Library.root
let settings: DaemonSettings
do {
    settings = try DaemonSettings(Configuration(root: root), root: root)
    for warning in settings.warnings { Log.warning(warning) }
} catch {
    Log.error("invalid configuration: \(error)")
    exit(exitConfiguration)
}
if settings.strategy == .off {
    // Started and done: a Type=notify unit ends as inactive, not as failed (the Debian package
    // ships REBOOT_STRATEGY=off until the machine is configured). READY=1 alone, read by systemd
    // before the exit: with STOPPING=1 in the same message, systemd 252 and 257 failed the unit
    // with result 'protocol' and restarted it every 10 s.
    Log.info("REBOOT_STRATEGY is off: nothing to do")
    Notify.send("READY=1\nSTATUS=REBOOT_STRATEGY is off: nothing to do")
    Notify.barrier()
    exit(0)
}

let coordinator: Coordinator
do {
    coordinator = try Coordinator(root: root, strategy: settings.strategy.rawValue)
    try coordinator.set(.starting)
} catch {
    Log.error("\(error)")
    exit(1)
}

let machineID: String
do {
    machineID = try Library.machineID(root: root)
} catch {
    Log.error("cannot start: \(error)")
    exit(exitConfiguration)
}

let hooks: Hooks
do {
    let etcd = try settings.client().environment(prefix: "LOCKSMITHCTL")
    hooks = Hooks(directory: settings.hooksDirectory, timeoutMilliseconds: Int(settings.hookTimeout / 1_000_000),
                  environment: Hooks.environment(group: settings.group, machineID: machineID, root: root, etcd: etcd))
} catch {
    Log.error("cannot start: \(error)")
    exit(exitConfiguration)
}

var watchdogUsec: UInt64 = 0
let world = DaemonWorld(
    makeClient: { key in
        let client = try settings.client()
        if let key, key != client.key { try client.set("group", Library.group(ofKey: key)) }
        // Waiting in the queue, the daemon hears from the library after each renewal of its entry
        // (and pings the watchdog then): under a watchdog, the entry is renewed as often as the
        // watchdog wants a ping, half of WatchdogSec. The library renews 20 s before queue-ttl runs
        // out, and at least every third of it: so queue-ttl is 3 pings up to 10 s a ping, else a
        // ping and 20 s, 5s to 60s (WatchdogSec must be 4s or more).
        if watchdogUsec > 0 {
            let ping = Int(watchdogUsec / 2_000_000)
            try client.set("queue-ttl", "\(max(5, min(60, ping <= 10 ? 3 * ping : ping + 20)))s")
        }
        try client.prepare()  // libcurl now: a client that cannot work is an error here
        return client
    },
    reboot: {
        do {
            try SystemBus().reboot()
        } catch let error as BusError where error.answerLost {
            throw RebootAnswerLost(error.message)
        }
    },
    broadcast: { text in Broadcast.send(text, utmp: settings.utmp, root: root).count },
    setState: { try coordinator.set($0) },
    recordSlot: { held in
        try Library.recordSlot(held, root: root)
        coordinator.setSlot(held, since: Int64(time(nil)))
    },
    log: { level, text, fields in Log.write(level, text, fields) },
    status: { Notify.status($0) },
    notify: { Notify.send($0) },
    watchdogMilliseconds: csd_watchdog_enabled(&watchdogUsec) > 0 ? max(Int(watchdogUsec / 2000), 100) : nil,
    idle: pageOutOwnCode,
    runHooks: { phase, stopping in hooks.run(phase, stopping: stopping) },
    hasHooks: { hooks.has($0) },
    writeMetrics: settings.metricsFile.map { file in
        { text in
            _ = cglibc_make_directories(String(file[..<(file.lastIndex(of: "/") ?? file.startIndex)]))
            let r = cglibc_replace_file(file, text, 0, 0)
            if r < 0 { Log.warning("cannot write the metrics file \(file): \(String(cString: strerror(-r)))") }
        }
    })
let inputs = SharedInputs()
// The id slots are taken under: the machine id, or with fleetlock LOCKSMITHD_FLEETLOCK_ID.
let holderID = settings.fleetLockID ?? machineID
let daemon = Daemon(settings: settings, world: world, inputs: inputs, machineID: holderID)

// The slot this machine's daemon recorded as held (normally from before the last reboot) is given
// back at once, by a helper process (before any thread starts), also when an update already
// waits: no slot is held while waiting. The helper loads libcurl: if it cannot, the daemon could
// never take a slot, and stops here rather than wait for an update it cannot act on.
if settings.takesSlot {
    let stale = Daemon.staleTarget({ try Library.slotRecord(root: root) }, group: settings.group, machineID: holderID,
                                   log: { level, text, fields in Log.write(level, text, fields) })
    // With post-reboot hooks, the slot from before the reboot is the daemon's to give back, once
    // they pass (the daemon's checkingHealth phase); the helper then only checks that libcurl loads.
    let gated = stale != nil && hooks.has(.postReboot)
    // Held until the post-reboot hooks pass: the state file says so (since before this start).
    if gated, let stale { coordinator.setSlot(stale, since: nil) }
    // The machine id's slot is given back at every start too, as the original did (a slot held
    // under it means "this machine is going down": `locksmithctl lock && reboot`), at once.
    let own = Daemon.machineTarget(group: settings.group, machineID: holderID, besides: stale)
    do {
        let helper = try StaleSlotHelper.start(targets: [own, gated ? nil : stale].compactMap { $0 }, clearsRecord: !gated && stale != nil,
                                               fleetLock: settings.usesFleetLock, world: world)
        daemon.staleSlot = stale
        daemon.machineSlot = own
        daemon.staleHelperDone = { helper.finish() && !gated }
    } catch {
        Log.error("\(error): REBOOT_STRATEGY=\(settings.strategy) needs libcurl (Debian: libcurl4); not starting")
        exit(1)
    }
}
startSignalThread(daemon)

// Where "reboot needed" comes from (LOCKSMITHD_REBOOT_SOURCE).
let source = settings.rebootSource, sourceArgument = settings.rebootSourceArgument
if source == .file || source == .auto {
    if let warning = SentinelFile.openness(sourceArgument) { Log.warning(warning) }
    spawnThread {
        SentinelFile.watch(sourceArgument) { path in
            inputs.update {
                $0.rebootNeeded = true
                if $0.rebootNeededBy.isEmpty { $0.rebootNeededBy = "\(path) exists" }
            }
        }
    }
}
if source == .command {
    spawnThread {
        CheckCommand.watch(sourceArgument, interval: settings.rebootCheckInterval, timeout: settings.hookTimeout,
                           environment: hooks.environment) {
            inputs.update {
                $0.rebootNeeded = true
                if $0.rebootNeededBy.isEmpty { $0.rebootNeededBy = "the reboot check says so" }
            }
        }
    }
}

// The update engine, followed on its own thread; a bus that fails is connected to again.
if source == .updateEngine || source == .auto { spawnThread {
    var attempt = 0
    var absentSaid = false
    while true {
        do {
            let monitor = try UpdateEngineMonitor { event in
                switch event {
                case .status(let status):
                    absentSaid = false
                    let needed = status.currentOperation == UpdateStatus.needReboot
                    inputs.update {
                        $0.updateEngineOperation = status.currentOperation
                        if needed { $0.rebootNeeded = true }
                    }
                case .absent:
                    // With the auto source, a machine without the update engine is normal.
                    if !absentSaid && source == .updateEngine {
                        Log.warning("the update engine (\(UpdateEngine.service)) is not on the system bus; waiting for it")
                    } else if !absentSaid {
                        Log.info("the update engine (\(UpdateEngine.service)) is not on the system bus; waiting for it, and for \(sourceArgument)")
                    }
                    absentSaid = true
                case .malformed(let what), .untrusted(let what):
                    Log.warning(what)
                }
            }
            attempt = 0
            try monitor.run { false }
        } catch {
            Log.warning("system bus: \(error); connecting again")
        }
        sleep(UInt32(Library.backoff(attempt: attempt)))
        attempt += 1
    }
} }

exit(daemon.run())
