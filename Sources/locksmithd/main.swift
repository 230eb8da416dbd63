// locksmithd: reboots this machine after an update, when its reboot window is open and, with
// REBOOT_STRATEGY=etcd-lock, once it holds a slot of its group's semaphore in etcd.
import Glibc
import LocksmithBus
import LocksmithCore
import LocksmithSystem

let usage = """
    Usage: locksmithd [-version] [-help]

    locksmithd reboots this machine after the update engine has applied an update: within the
    reboot window, if one is set, and with REBOOT_STRATEGY=etcd-lock only while it holds a slot of
    its group's semaphore in etcd (see locksmithctl). It is configured by the environment and by
    /usr/share/coreos/update.conf, /usr/share/flatcar/update.conf, /etc/coreos/update.conf and
    /etc/flatcar/update.conf (later files win, the environment wins over files):

      REBOOT_STRATEGY                    etcd-lock, reboot (default) or off
      LOCKSMITHD_REBOOT_WINDOW_START     HH:MM or Day HH:MM (also REBOOT_WINDOW_START)
      LOCKSMITHD_REBOOT_WINDOW_LENGTH    a duration such as 1h30m (also REBOOT_WINDOW_LENGTH)
      LOCKSMITHD_ENDPOINT, LOCKSMITHD_GROUP, LOCKSMITHD_ETCD_CAFILE, LOCKSMITHD_ETCD_CERTFILE,
      LOCKSMITHD_ETCD_KEYFILE, LOCKSMITHD_ETCD_USERNAME, LOCKSMITHD_ETCD_PASSWORD,
      LOCKSMITHD_ETCD_PASSWORD_FILE, LOCKSMITHD_ETCD_API, LOCKSMITHD_TIMEOUT
                                         etcd settings, as locksmithctl's flags
      LOCKSMITHD_REBOOT_BROADCAST_DELAY  how long users are warned before the reboot (default 5m)
      LOCKSMITHD_SLOT_WAIT               watch (default) or poll: how to wait for a free slot
      LOCKSMITHD_UTMP                    the utmp file of logged-in users (default /var/run/utmp)
      LOCKSMITH_ROOT                     read /etc/machine-id, the update.conf files, utmp and
                                         /dev, and write /run/update-engine, under this directory

    """

let arguments = Array(CommandLine.arguments.dropFirst())
if arguments.contains(where: { ["-version", "--version"].contains($0) }) {
    print("locksmithd version \(Version.string)")
    exit(0)
}
if arguments.contains(where: { ["-h", "-help", "--help"].contains($0) }) {
    print(usage, terminator: "")
    exit(0)
}
if let unknown = arguments.first {
    writeStandardError("locksmithd: unknown argument \(JSONText.quoted(unknown))\n\(usage)")
    exit(2)
}

// Under systemd (its journal on our stderr), log to the journal with priorities and fields.
Log.toJournal = Syscalls.environment("JOURNAL_STREAM") != nil

let configuration: DaemonConfiguration
do {
    let (loaded, warnings) = try DaemonConfiguration.load()
    configuration = loaded
    for warning in warnings { Log.warning(warning) }
} catch {
    Log.error("invalid configuration: \(error)")
    exit(1)
}

if configuration.strategy == .off {
    Log.info("REBOOT_STRATEGY is off: nothing to do")
    exit(0)
}

let coordinator: Coordinator
do {
    coordinator = try Coordinator(root: configuration.root, strategy: configuration.strategy.rawValue)
    try coordinator.set(.starting)
} catch {
    Log.error("\(error)")
    exit(1)
}

let inputs = SharedInputs()
let daemon: Daemon
do {
    daemon = try Daemon(configuration: configuration, coordinator: coordinator, inputs: inputs)
} catch {
    Log.error("cannot start: \(error)")
    exit(1)
}
// The slot this machine's daemon recorded as held (normally from before the last reboot) is given
// back at once, by a helper process (before any thread starts), also when an update already
// waits: no slot is held while waiting. The helper loads libcurl: if it cannot, the daemon could
// never take a slot, and stops here rather than wait for an update it cannot act on.
if configuration.strategy == .etcdLock {
    let stale = StaleSlot.target(root: configuration.root, options: configuration.etcd, machineID: daemon.machineID)
    do {
        daemon.staleReleaser = try StaleSlot.startHelper(target: stale, options: configuration.etcd, root: configuration.root)
        daemon.staleSlot = stale
    } catch {
        Log.error("\(error): REBOOT_STRATEGY=etcd-lock needs libcurl (Debian: libcurl4); not starting")
        exit(1)
    }
}
startSignalThread(inputs)

// The update engine, followed on its own thread; a bus that fails is connected to again.
spawnThread {
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
                    if !absentSaid { Log.warning("the update engine (\(UpdateEngine.service)) is not on the system bus; waiting for it") }
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
        Clock.sleep(milliseconds: Int(Backoff.delay(attempt: attempt)) * 1000)
        attempt += 1
    }
}

exit(daemon.run())
