// locksmithctl: the operator CLI of locksmith-swift. See Commands.swift for the commands.
import Glibc
import Locksmith

func main(_ arguments: [String]) -> Int32 {
    let line: ParsedCommandLine
    do {
        line = try CommandLineParser.parse(arguments,
                                           localFlagsOf: { Set(command(named: $0)?.localFlags.map(\.name) ?? []) },
                                           localValueFlagsOf: { Set(command(named: $0)?.valueFlags.map(\.name) ?? []) },
                                           takesDashArguments: { command(named: $0)?.takesDashArguments ?? false })
    } catch {
        standardError("locksmithctl: \(error.message)\nRun 'locksmithctl help' for usage.\n")
        return ExitStatus.usage
    }
    hideSecretArguments(line.secretPositions)
    if line.flag("version") {
        standardOutput("locksmithctl version \(Library.version)\n")
        return ExitStatus.ok
    }
    let name = line.command ?? "help"
    guard let selected = command(named: name) else {
        _ = unknownCommand(name)
        return ExitStatus.usage
    }
    if line.wantsHelp {
        standardOutput(line.command == nil ? usageText() : commandHelp(selected))
        return ExitStatus.ok
    }
    do {
        try selected.run(Context(line))
        return ExitStatus.ok
    } catch let failure as Failure {
        if !failure.message.isEmpty { standardError(failure.message + "\n") }
        return failure.status
    } catch {
        standardError("locksmithctl: \(error)\n")
        return ExitStatus.failed
    }
}

/// Overwrites a password given on the command line with stars in the process's own argv, which
/// is what the process list (/proc/PID/cmdline) shows. It was visible from exec until here, so
/// this only narrows the window: -etcd-password-file and the environment keep it out entirely.
func hideSecretArguments(_ positions: [(argument: Int, offset: Int)]) {
    for (argument, offset) in positions {
        guard argument + 1 < Int(CommandLine.argc), let p = CommandLine.unsafeArgv[argument + 1] else { continue }
        let length = strlen(p)
        if offset < length { memset(p + offset, Int32(UInt8(ascii: "*")), length - offset) }
    }
}

exit(main(Array(CommandLine.arguments.dropFirst())))
