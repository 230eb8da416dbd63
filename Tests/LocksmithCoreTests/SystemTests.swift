import Glibc
import Testing
@testable import LocksmithCore
@testable import LocksmithSystem

/// A scratch directory that acts as a system root.
final class ScratchRoot {
    let path: String
    init() {
        var template = Array("/tmp/locksmith-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { _ = system("rm -rf '\(path)'") }

    func write(_ relative: String, _ text: String) {
        let full = path + relative
        var dir = ""
        for part in full.split(separator: "/").dropLast() {
            dir += "/" + part
            mkdir(dir, 0o755)
        }
        let f = fopen(full, "w")!
        fputs(text, f)
        fclose(f)
    }
}

@Suite struct SystemTests {
    @Test func machineIDIsTrimmedAndChecked() throws {
        let root = ScratchRoot()
        #expect(throws: LocksmithError.self) { try MachineID.read(root: root.path) }
        root.write("/etc/machine-id", "\t69d27b356a94476da859461d3a3bc6fd \n")
        #expect(try MachineID.read(root: root.path) == "69d27b356a94476da859461d3a3bc6fd")
        for bad in ["", "69d27b356a94476da859461d3a3bc6f", "69D27B356A94476DA859461D3A3BC6FD", "69d27b356a94476da859461d3a3bc6fdd",
                    "69d27b356a94476d a859461d3a3bc6fd", "zzd27b356a94476da859461d3a3bc6fd"] {
            root.write("/etc/machine-id", bad + "\n")
            do {
                _ = try MachineID.read(root: root.path)
                Issue.record("accepted \(bad)")
            } catch let error as LocksmithError {
                #expect(error.kind == .badMessage)
                #expect(error.message.contains("/etc/machine-id"))
            }
        }
    }

    @Test func missingMachineIDIsNotFound() {
        let root = ScratchRoot()
        do {
            _ = try MachineID.read(root: root.path)
        } catch let error as LocksmithError {
            #expect(error.kind == .notFound)
            #expect(error.message.contains("No such file"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func rootResolution() {
        #expect(SystemRoot.resolve("/etc/machine-id", root: "/") == "/etc/machine-id")
        #expect(SystemRoot.resolve("/etc/machine-id", root: "/tmp/n1/") == "/tmp/n1/etc/machine-id")
        #expect(SystemRoot.resolve("/etc/machine-id", root: "/tmp/n1") == "/tmp/n1/etc/machine-id")
    }

    @Test func updateConfFilesInOrderLaterWins() throws {
        let root = ScratchRoot()
        root.write("/usr/share/coreos/update.conf", "REBOOT_STRATEGY=reboot\nGROUP=a\nSERVER=x\n")
        root.write("/usr/share/flatcar/update.conf", "GROUP=b\n")
        root.write("/etc/coreos/update.conf", "REBOOT_STRATEGY=\"etcd-lock\"\n")
        root.write("/etc/flatcar/update.conf", "# nothing\nLOCKSMITHD_REBOOT_WINDOW_START='Thu 23:00'\n")
        let c = try Configuration.load(root: root.path, environment: false)
        #expect(c["REBOOT_STRATEGY"] == "etcd-lock")
        #expect(c.settings["REBOOT_STRATEGY"]?.origin == root.path + "/etc/coreos/update.conf")
        #expect(c["GROUP"] == "b")
        #expect(c["SERVER"] == "x")
        #expect(c["LOCKSMITHD_REBOOT_WINDOW_START"] == "Thu 23:00")
    }

    @Test func environmentSplitsAtTheFirstEqualsByte() {
        // (Names of this test's own: other tests may run at the same time.)
        setenv("LOCKSMITH_TEST_SPLIT_EQUALS", "a=b=c", 1)
        setenv("LOCKSMITH_TEST_SPLIT_MARK", "\u{301}x", 1)  // a value that starts with a combining mark
        setenv("LOCKSMITH_TEST_SPLIT_EMPTY", "", 1)
        defer {
            for name in ["LOCKSMITH_TEST_SPLIT_EQUALS", "LOCKSMITH_TEST_SPLIT_MARK", "LOCKSMITH_TEST_SPLIT_EMPTY"] { unsetenv(name) }
        }
        let environment = Syscalls.environment()
        func value(_ name: String) -> [String] { environment.filter { $0.key == name }.map(\.value) }
        #expect(value("LOCKSMITH_TEST_SPLIT_EQUALS") == ["a=b=c"])
        #expect(value("LOCKSMITH_TEST_SPLIT_MARK") == ["\u{301}x"])
        #expect(value("LOCKSMITH_TEST_SPLIT_EMPTY") == [""])
        #expect(!environment.contains { $0.key.contains("=") })
    }

    @Test func noFilesIsAnEmptyConfiguration() throws {
        let root = ScratchRoot()
        #expect(try Configuration.load(root: root.path, environment: false).settings.isEmpty)
    }

    @Test func unreadableOrBinaryFilesAreErrors() throws {
        let root = ScratchRoot()
        root.write("/etc/coreos/update.conf", "A=\u{1}")
        mkdir(root.path + "/etc/flatcar", 0o755)
        mkdir(root.path + "/etc/flatcar/update.conf", 0o755)  // a directory where a file should be
        do {
            _ = try Configuration.load(root: root.path, environment: false)
            Issue.record("loaded a directory as update.conf")
        } catch let error as LocksmithError {
            #expect(error.message.contains("/etc/flatcar/update.conf"))
        }
    }

    @Test func environmentWinsOverFiles() throws {
        let root = ScratchRoot()
        root.write("/etc/coreos/update.conf", "PATH=/from/file\nLOCKSMITH_TEST_ONLY_FILE=1\n")
        let c = try Configuration.load(root: root.path, environment: true)
        #expect(c.settings["PATH"]?.origin == "environment")
        #expect(c["LOCKSMITH_TEST_ONLY_FILE"] == "1")
    }

    @Test func readFileLimits() throws {
        let root = ScratchRoot()
        root.write("/big", String(repeating: "x", count: 5000))
        #expect(try Syscalls.readFile(root.path + "/big").count == 5000)
        #expect(throws: LocksmithError.self) { try Syscalls.readFile(root.path + "/big", limit: 4096) }
    }
}

/// locksmithd's files under /run (issue 18, part 1): the state file's text, and the checks and
/// the liveness every reader gets.
@Suite struct DaemonFilesTests {
    @Test func stateTextRoundTripsAndChecksItsValues() throws {
        let key = "coreos.com/updateengine/rebootlock/groups/web%2F1/semaphore"
        let text = try DaemonFiles.stateText(strategy: "etcd-lock", state: "reboot-planned", stateSince: 1_764_000_000,
                                             slot: .init(key: key, id: "abc\"$`", since: 1_764_000_100))
        var values = Configuration()
        values.merge(fileText: text, origin: "state")
        #expect(values["STATE"] == "reboot-planned" && values["STATE_SINCE"] == "1764000000")
        #expect(values["SLOT_HELD"] == "yes" && values["SLOT_GROUP"] == "web/1" && values["SLOT_KEY"] == key)
        #expect(values["SLOT_ID"] == "abc\"$`" && values["SLOT_SINCE"] == "1764000100")
        let none = try DaemonFiles.stateText(strategy: "reboot", state: "running", stateSince: 1, slot: .init(key: key, id: "x", since: nil))
        #expect(!none.contains("SLOT_SINCE"))
        #expect(try DaemonFiles.stateText(strategy: "reboot", state: "running", stateSince: 1, slot: nil).hasSuffix("SLOT_HELD=no\n"))
        for (strategy, state) in [("etcd lock", "running"), ("reboot", "RUNNING\nSLOT_HELD=yes"), ("", "running")] {
            #expect(throws: LocksmithError.self) { try DaemonFiles.stateText(strategy: strategy, state: state, stateSince: 1, slot: nil) }
        }
        #expect(throws: LocksmithError.self) {
            try DaemonFiles.stateText(strategy: "reboot", state: "running", stateSince: 1, slot: .init(key: "not/a/key", id: "x", since: nil))
        }
    }

    @Test func readTellsARunningDaemonFromALeftOverFile() throws {
        let root = ScratchRoot()
        root.write(DaemonFiles.statePath, "STATE=running\nSLOT_HELD=no\n")
        let file = root.path + DaemonFiles.statePath
        var contents = try DaemonFiles.read(DaemonFiles.statePath, root: root.path)
        #expect(contents.liveness == .leftOver && contents.values["STATE"] == "running")
        // An flock, which any reader can take, proves nothing (issue 26).
        let reader = open(file, O_RDONLY)
        defer { close(reader) }
        #expect(flock(reader, LOCK_EX) == 0)
        #expect(try DaemonFiles.read(DaemonFiles.statePath, root: root.path).liveness == .leftOver)
        // The daemon's write lock (an open-file-description lock: F_OFD_SETLK is 37) does.
        let writer = open(file, O_RDWR)
        defer { close(writer) }
        var lock = Glibc.flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        #expect(fcntl(writer, 37, &lock) == 0)
        contents = try DaemonFiles.read(DaemonFiles.statePath, root: root.path)
        #expect(contents.liveness == .running)
        #expect(contents.modified > 0)
    }

    @Test func readRefusesFilesOthersCouldHaveWritten() throws {
        let root = ScratchRoot()
        #expect(throws: LocksmithError.self) { try DaemonFiles.read(DaemonFiles.statePath, root: root.path) }
        root.write(DaemonFiles.statePath, "STATE=rebooting\n")
        let file = root.path + DaemonFiles.statePath
        chmod(file, 0o664)
        do {
            _ = try DaemonFiles.read(DaemonFiles.statePath, root: root.path)
            Issue.record("a group-writable file was read")
        } catch let error as LocksmithError {
            #expect(error.kind == .permissionDenied && error.message.contains("writable by nobody else"))
        }
        chmod(file, 0o644)
        root.write(DaemonFiles.statePath, String(repeating: "#", count: DaemonFiles.maxBytes + 1))
        #expect(throws: LocksmithError.self) { try DaemonFiles.read(DaemonFiles.statePath, root: root.path) }
        unlink(file)
        symlink("/etc/passwd", file)
        do {
            _ = try DaemonFiles.read(DaemonFiles.statePath, root: root.path)
            Issue.record("a symbolic link was followed")
        } catch let error as LocksmithError {
            #expect(error.message.contains("symbolic link"))
        }
    }
}
