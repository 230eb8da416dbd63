// `window`: the configured reboot window and when it next opens, in local time.
import Glibc
import Locksmith

func runWindow(_ context: Context) throws {
    let settings: DaemonSettings
    do {
        settings = try DaemonSettings(Configuration(), root: context.root)
    } catch let error as LocksmithFailure where error.code == EINVAL {
        throw Failure(message: "Invalid reboot window: \(error)", status: ExitStatus.failed)
    } catch {
        throw Failure(message: "Error reading the configuration: \(error)", status: ExitStatus.failed)
    }
    guard let window = settings.window, let sources = settings.windowSources else {
        standardOutput("No reboot window is set: reboots may happen at any time.\n")
        return
    }
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    let t = Int64(now.tv_sec)
    let occurrence: (start: Int64, end: Int64)
    do {
        occurrence = try window.occurrence(now: t)
    } catch {
        throw Failure(message: "Error: \(error)", status: ExitStatus.failed)
    }
    let (start, length) = window.text
    var text = "Reboot window: \(start), \(length) long (\(sources.start), \(sources.length))\n"
    if occurrence.start <= t {
        text += "Open now: since \(localTime(occurrence.start)); closes \(localTime(occurrence.end)), in \(Library.formatDuration((occurrence.end - t) * 1_000_000_000))\n"
    } else {
        text += "Next opening: \(localTime(occurrence.start)), in \(Library.formatDuration((occurrence.start - t) * 1_000_000_000)); closes \(localTime(occurrence.end))\n"
    }
    standardOutput(text)
}

/// A time in the local time zone, for people: "Thu 2026-11-26 23:00 PST".
func localTime(_ t: Int64) -> String {
    var seconds = time_t(t)
    var tm = Glibc.tm()
    localtime_r(&seconds, &tm)
    var buffer = [CChar](repeating: 0, count: 64)
    let n = strftime(&buffer, buffer.count, "%a %Y-%m-%d %H:%M %Z", &tm)
    return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
