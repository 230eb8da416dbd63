// `window`: the configured reboot window and when it next opens, in local time or the window's
// zone (LOCKSMITHD_REBOOT_WINDOW_TZ).
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
    var text: String
    if let zone = window.zone, let zoneSource = sources.zone {
        text = "Reboot window: \(start), \(length) long, \(zone) time (\(sources.start), \(sources.length), \(zoneSource))\n"
    } else {
        text = "Reboot window: \(start), \(length) long (\(sources.start), \(sources.length))\n"
    }
    let time = window.format
    if occurrence.start <= t {
        text += "Open now: since \(time(occurrence.start)); closes \(time(occurrence.end)), in \(Library.formatDuration((occurrence.end - t) * 1_000_000_000))\n"
    } else {
        text += "Next opening: \(time(occurrence.start)), in \(Library.formatDuration((occurrence.start - t) * 1_000_000_000)); closes \(time(occurrence.end))\n"
    }
    standardOutput(text)
}
