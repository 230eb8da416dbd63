// locksmithctl: the operator CLI of locksmith-swift. See Commands.swift for the commands.
import Glibc
import LocksmithCore

func main(_ arguments: [String]) -> Int32 {
    let line: ParsedCommandLine
    do {
        line = try CommandLineParser.parse(arguments,
                                           localFlagsOf: { Set(command(named: $0)?.localFlags.map(\.name) ?? []) },
                                           takesDashArguments: { command(named: $0)?.takesDashArguments ?? false })
    } catch {
        standardError("locksmithctl: \(error.message)\nRun 'locksmithctl help' for usage.\n")
        return ExitStatus.usage
    }
    if line.flag("version") {
        standardOutput("locksmithctl version \(Version.string)\n")
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

exit(main(Array(CommandLine.arguments.dropFirst())))
