// `status`, `status --json`, `status --all-groups`, `status --ages`: the original's output byte
// for byte, and the views it did not have (`status --watch` lives in WatchCommand.swift).
import Glibc
import Locksmith

func runStatus(_ context: Context) throws {
    guard context.line.arguments.isEmpty else {
        throw Failure(message: "status takes no arguments\nRun 'locksmithctl help status' for usage.", status: ExitStatus.usage)
    }
    let json = context.line.localFlags.contains("json")
    if context.line.localFlags.contains("watch") {
        try runStatusWatch(context, allGroups: context.line.localFlags.contains("all-groups"))
        return
    }
    if context.line.localFlags.contains("all-groups") {
        try runAllGroups(context, json: json)
        return
    }
    if json {
        // The semaphore, the holder records and the queue in one read (one request over v3).
        let (document, records, entries) = try context.etcd("Error reading semaphore") { try $0.getAll() }
        let client = try context.client()
        let now = currentTime()
        let ages = holderAges(document, records: records)
        standardOutput("{" + [
            "\"group\":" + Library.jsonQuoted(client.setting("group")?.value ?? ""),
            "\"key\":" + Library.jsonQuoted(client.key),
            "\"available\":\(document.available)",
            "\"max\":\(document.max)",
            "\"holders\":[" + document.holders.map(Library.jsonQuoted).joined(separator: ",") + "]",
            "\"etcd_api\":" + Library.jsonQuoted(client.api ?? ""),
            "\"endpoint\":" + Library.jsonQuoted(client.endpoint ?? ""),
            "\"holder_ages\":" + holderAgesJSON(ages, now: now),
            "\"queue\":" + queueJSON(entries.filter { $0.ignored == 0 }, now: now),
            "\"queue_ignored\":" + ignoredQueueJSON(entries.filter { $0.ignored != 0 }, api: client.api, now: now),
        ].joined(separator: ",") + "}\n")
        return
    }
    let document = try context.etcd("Error reading semaphore") { try $0.get() }
    let client = try context.client()
    let now = currentTime()
    var text = "Available: \(document.available)\nMax: \(document.max)\n"
    if context.line.localFlags.contains("queue") {
        let entries = try context.etcd("Error reading the queue") { try $0.queueAll() }
        standardOutput(text + queueTable(entries, api: client.api, now: now))
        return
    }
    if context.line.localFlags.contains("ages") {
        let ages = try context.etcd("Error reading holder records") { try holderAges(document, $0) }
        standardOutput(text + holderAgesTable(ages, now: now))
        return
    }
    if !document.holders.isEmpty {
        text += "\nMACHINE ID\n" + document.holders.map { $0 + "\n" }.joined()
    }
    standardOutput(text)
}

private func runAllGroups(_ context: Context, json: Bool) throws {
    let groups = try context.etcd("Error reading semaphores") { try $0.groups() }
    let client = try context.client()
    var bad = 0
    if json {
        let items = groups.map { entry -> String in
            let head = "{\"group\":\(Library.jsonQuoted(entry.group)),\"key\":\(Library.jsonQuoted(entry.key)),"
            switch entry.semaphore {
            case .success(let d):
                return head + "\"available\":\(d.available),\"max\":\(d.max),\"holders\":[" + d.holders.map(Library.jsonQuoted).joined(separator: ",") + "]}"
            case .failure(let e):
                bad += 1
                return head + "\"error\":\(Library.jsonQuoted(e.message))}"
            }
        }
        standardOutput("{\"etcd_api\":\(Library.jsonQuoted(client.api ?? "")),\"endpoint\":\(Library.jsonQuoted(client.endpoint ?? "")),"
            + "\"groups\":[" + items.joined(separator: ",") + "]}\n")
    } else {
        var rows = [["GROUP", "AVAILABLE", "MAX", "HOLDERS"]]
        for entry in groups {
            // Group names come from etcd keys: one with a control character is shown quoted.
            let name = entry.group.isEmpty ? "(default)" : shownKey(entry.group)
            switch entry.semaphore {
            case .success(let d):
                rows.append([name, "\(d.available)", "\(d.max)", d.holders.isEmpty ? "-" : d.holders.joined(separator: ",")])
            case .failure(let e):
                bad += 1
                rows.append([name, "-", "-", "error: " + e.message])
            }
        }
        let widths = (0..<3).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            var line = ""
            for column in 0..<3 { line += row[column] + String(repeating: " ", count: widths[column] - row[column].count + 2) }
            standardOutput(line + row[3] + "\n")
        }
    }
    if bad > 0 { throw Failure(message: "Error reading semaphore: \(bad) group(s) hold no valid semaphore", status: ExitStatus.failed) }
}

/// A name taken from an etcd key, as it is shown: quoted if it has a control character.
func shownKey(_ text: String) -> String {
    text.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) } ? Library.jsonQuoted(text) : text
}
