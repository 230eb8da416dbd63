// `lock`, `unlock`, `set-max`, `reboot` and `send-need-reboot`: the commands that change things.
import Glibc
import Locksmith
import LocksmithBus

func runLock(_ context: Context) throws {
    let id = try context.machineID("lock")
    try context.etcd("Error locking") { try $0.lock(id) }
}

func runUnlock(_ context: Context) throws {
    if let limit = context.line.localValues["older-than"] {
        try runUnlockOlderThan(context, limit)
        return
    }
    let id = try context.machineID("unlock")
    try context.etcd("Error unlocking") { try $0.unlock(id) }
}

func runSetMax(_ context: Context) throws {
    let arguments = context.line.arguments
    guard arguments.count == 1 else { throw Failure(message: "New maximum value must be set.", status: ExitStatus.failed) }
    guard let max = parseMax(arguments[0]) else {
        throw Failure(message: "Invalid maximum value: \(arguments[0])", status: ExitStatus.failed)
    }
    let old = try context.etcd("Error setting value") { try $0.setMax(max) }
    standardOutput("Old-Max: \(old)\nMax: \(max)\n")
}

/// A maximum as Go's strconv.Atoi reads it (optional sign, decimal digits), which must be
/// 0 or more and fit an int.
func parseMax(_ text: String) -> Int? {
    var digits = Substring(text)
    var negative = false
    if let sign = digits.first, sign == "+" || sign == "-" {
        negative = sign == "-"
        digits = digits.dropFirst()
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int32(digits) else { return nil }
    if negative && value != 0 { return nil }
    return Int(value)
}

func runReboot(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "reboot takes no arguments\nRun 'locksmithctl help reboot' for usage.", status: ExitStatus.usage)
    }
    guard geteuid() == 0 else { throw Failure(message: "Error: reboot must be run as root", status: ExitStatus.failed) }
    let id = try context.machineID("reboot")
    var took = false
    var key = ""
    try context.etcd("Error locking") { client in
        key = client.key
        do {
            try client.lock(id)
            took = true
        } catch let error as LocksmithFailure where error.code == EEXIST {
            context.debugLog("\(id) already holds a slot")
        } catch let error as LocksmithFailure where error.code == EBUSY {
            // Free slots are checked first; a holder with no free slot left still holds its own.
            if try client.get().holders.contains(id) { context.debugLog("\(id) already holds a slot") } else { throw error }
        }
    }
    if took {
        // So that this machine's locksmithd gives the slot back once the machine is up again.
        do {
            try Library.recordSlot((key, id), root: context.root)
        } catch {
            standardError("locksmithctl: warning: \(error): after the reboot, give the slot back with 'locksmithctl unlock \(id)'\n")
        }
    }
    do {
        try SystemBus().reboot()
    } catch {
        var message = "Error rebooting: \(error)"
        if took {
            do {
                try context.etcd("Error unlocking") { try $0.unlock(id) }
                message += "\nThe reboot lock taken for \(id) was released."
            } catch let failure as Failure {
                message += "\n" + failure.message + "\nThe reboot lock is still held by \(id): run 'locksmithctl unlock \(id)'."
            }
        }
        throw Failure(message: message, status: ExitStatus.failed)
    }
}

func runSendNeedReboot(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "send-need-reboot takes no arguments\nRun 'locksmithctl help send-need-reboot' for usage.", status: ExitStatus.usage)
    }
    do {
        let bus = try SystemBus()
        try bus.emitStatusUpdate(UpdateStatus(currentOperation: UpdateStatus.needReboot))
        // locksmithd believes this signal only from root, and asks the bus daemon which user sent
        // it: that works only while this connection is open, so it stays open a moment.
        sleep(2)
    } catch {
        throw Failure(message: "Error sending the signal: \(error)", status: ExitStatus.failed)
    }
}
