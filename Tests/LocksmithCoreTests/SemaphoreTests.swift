import Testing
@testable import LocksmithCore

@Suite struct SemaphoreTests {
    @Test func freshDocumentBytes() {
        #expect(SemaphoreDocument().json == #"{"semaphore":1,"max":1,"holders":null}"#)
    }

    @Test func goldenBytesAfterLockAndUnlock() throws {
        var s = SemaphoreDocument()
        try s.setMax(3)
        try s.lock("node1")
        try s.lock("b")
        try s.lock("a")
        #expect(s.json == #"{"semaphore":0,"max":3,"holders":["a","b","node1"]}"#)
        for h in ["a", "b", "node1"] { try s.unlock(h) }
        #expect(s.json == #"{"semaphore":3,"max":3,"holders":[]}"#)

        var one = SemaphoreDocument()
        try one.lock("x")
        try one.unlock("x")
        #expect(one.json == #"{"semaphore":1,"max":1,"holders":[]}"#)
    }

    @Test func lockChecksFreeSlotsBeforeHolder() throws {
        var s = SemaphoreDocument()
        try s.lock("a")
        #expect(throws: LocksmithError(.busy, "semaphore is at 0")) { try s.lock("a") }
        #expect(throws: LocksmithError(.busy, "semaphore is at 0")) { try s.lock("b") }
        try s.setMax(2)
        #expect(throws: LocksmithError(.exists, "holder exists")) { try s.lock("a") }
        #expect(throws: LocksmithError(.notFound, "holder does not exist")) { try s.unlock("zz") }
        #expect(s.json == #"{"semaphore":1,"max":2,"holders":["a"]}"#)
    }

    @Test func setMaxMovesFreeSlotsAndKeepsHolders() throws {
        var s = try SemaphoreDocument(parsing: #"{"semaphore":0,"max":3,"holders":["a","b","node1"]}"#)
        #expect(try s.setMax(2) == 3)
        #expect(s.available == -1)
        #expect(s.json == #"{"semaphore":-1,"max":2,"holders":["a","b","node1"]}"#)
        #expect(throws: LocksmithError(.busy, "semaphore is at -1")) { try s.lock("c") }
        #expect(throws: LocksmithError.self) { try s.setMax(-1) }
        #expect(s.max == 2)
        #expect(try s.setMax(0) == 2)
        #expect(s.available == -3)
        #expect(try s.setMax(5) == 0)
        #expect(s.available == 2)
    }

    @Test func setMaxRefusesOverflow() throws {
        var s = try SemaphoreDocument(parsing: #"{"semaphore":2147483647,"max":0}"#)
        #expect(throws: LocksmithError.self) { try s.setMax(1) }
        #expect(s.max == 0)
        #expect(throws: LocksmithError.self) { try s.setMax(Int(Int32.max) + 1) }
    }

    @Test func missingFieldsReadAsZero() throws {
        let s = try SemaphoreDocument(parsing: "{}")
        #expect(s.available == 0 && s.max == 0 && s.holders.isEmpty)
        #expect(s.json == #"{"semaphore":0,"max":0,"holders":null}"#)
        let nulls = try SemaphoreDocument(parsing: #"{"semaphore":null,"max":null,"holders":null}"#)
        #expect(nulls.json == #"{"semaphore":0,"max":0,"holders":null}"#)
    }

    @Test func unknownFieldsAreKeptAndIndexIsNotOurs() throws {
        var s = try SemaphoreDocument(parsing: #" {"index": 4567, "semaphore": 1, "max": 2, "holders": ["z"], "owner": {"team": "infra", "tags": [1, 2.5, false]}} "#)
        try s.lock("a")
        #expect(s.json == #"{"semaphore":0,"max":2,"holders":["a","z"],"index":4567,"owner":{"team":"infra","tags":[1,2.5,false]}}"#)
    }

    @Test func fieldNamesMatchCaseInsensitivelyLastWins() throws {
        let s = try SemaphoreDocument(parsing: #"{"Semaphore":2,"MAX":3,"max":4,"Holders":["a"]}"#)
        #expect(s.available == 2 && s.max == 4 && s.holders == ["a"])
        #expect(s.json == #"{"semaphore":2,"max":4,"holders":["a"]}"#)
    }

    @Test func holdersAreSortedBytewiseAndComparedBytewise() throws {
        var s = try SemaphoreDocument(parsing: #"{"semaphore":5,"max":5,"holders":null}"#)
        try s.lock("b")
        try s.lock("B")
        try s.lock("\u{e9}")  // é precomposed
        try s.lock("e\u{301}")  // e + combining acute: canonically equal, different bytes
        try s.lock("a")
        #expect(s.holders == ["B", "a", "b", "e\u{301}", "\u{e9}"].map { $0 })
        #expect(s.holders.count == 5)
        #expect(s.holds("\u{e9}") && s.holds("e\u{301}"))
        try s.unlock("e\u{301}")
        #expect(s.holds("\u{e9}") && !s.holds("e\u{301}"))
    }

    @Test func aLockPlacesTheHolderAsASortWouldAlsoInAListStoredUnsorted() throws {
        // Another writer may have stored holders out of order: the lock sorts the whole list, as
        // the original did; a sorted list gets the new holder at its place.
        var unsorted = try SemaphoreDocument(parsing: #"{"semaphore":3,"max":6,"holders":["c","a","b"]}"#)
        try unsorted.lock("bb")
        #expect(unsorted.holders == ["a", "b", "bb", "c"])
        var sorted = try SemaphoreDocument(parsing: #"{"semaphore":10,"max":10,"holders":[]}"#)
        var ids = (0..<10).map { "m\(($0 * 7) % 10)" }
        for id in ids { try sorted.lock(id) }
        ids.sort(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(sorted.holders == ids)
        try sorted.unlock("m0")
        try sorted.lock("m0")
        #expect(sorted.holders == ids)
    }

    @Test func holdersAreEscapedAsGoEscapesThem() throws {
        var s = try SemaphoreDocument(parsing: #"{"semaphore":3,"max":3}"#)
        try s.lock("a<b>&c")
        try s.lock("q\"uote\\")
        try s.lock("line\u{2028}sep")
        #expect(s.json == #"{"semaphore":0,"max":3,"holders":["a\u003cb\u003e\u0026c","line\u2028sep","q\"uote\\"]}"#)
        let back = try SemaphoreDocument(parsing: s.json)
        #expect(back.holders == s.holders)
    }

    @Test func parsedHoldersKeepStoredOrder() throws {
        let s = try SemaphoreDocument(parsing: #"{"semaphore":0,"max":2,"holders":["z","a"]}"#)
        #expect(s.holders == ["z", "a"])
    }

    @Test(arguments: [
        ("", "empty"),
        ("not json", "not JSON"),
        ("[1]", "not a JSON object but an array"),
        ("\"x\"", "not a JSON object but a string"),
        ("null", "not a JSON object but null"),
        (#"{"max":"1"}"#, "\"max\" is not an integer but a string"),
        (#"{"max":1.5}"#, "\"max\" is not an integer but a fraction"),
        (#"{"max":1.0}"#, "\"max\" is not an integer"),
        (#"{"semaphore":true}"#, "\"semaphore\" is not an integer but a boolean"),
        (#"{"max":99999999999}"#, "\"max\" is out of range"),
        (#"{"semaphore":-2147483649}"#, "\"semaphore\" is out of range"),
        (#"{"holders":"a"}"#, "\"holders\" is not an array but a string"),
        (#"{"holders":{}}"#, "\"holders\" is not an array but an object"),
        (#"{"holders":[1]}"#, "holders[0] is not a string but an integer"),
        (#"{"holders":["a",null]}"#, "holders[1] is not a string but null"),
        (#"{"holders":["a","b","a"]}"#, "holder \"a\" is listed twice"),
        (#"{"holders":["a\u0000b"]}"#, "holders[0] is not a valid machine id"),
        (#"{"max":1} {"max":2}"#, "extra data"),
        (#"{"max":1,}"#, "not JSON"),
        (#"{'max':1}"#, "not JSON: expected a string in double quotes at byte 1"),
        ("{\"max\":01}", "not JSON"),
        ("{\"a\":\"tab\there\"}", "control character"),
        ("{\"a\":\"\\x\"}", "bad escape"),
        (String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "nested deeper"),
        ("   ", "unexpected end"),
        (#"{"max":1"#, "unexpected end"),
    ])
    func badDocumentsAreRefusedWithAReason(text: String, reason: String) {
        do {
            _ = try SemaphoreDocument(parsing: text)
            Issue.record("parsed \(text)")
        } catch let error as LocksmithError {
            #expect(error.kind == .badMessage)
            #expect(error.message.contains(reason), "\(error.message)")
            #expect(error.message.contains("(value: "))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func invalidUTF8IsABadDocument() {
        let bytes: [UInt8] = Array(#"{"holders":[""#.utf8) + [0xff, 0xfe] + Array(#""]}"#.utf8)
        #expect(throws: LocksmithError.self) {
            try bytes.withUnsafeBytes { try SemaphoreDocument(parsingUTF8: $0) }
        }
    }

    @Test func oversizedDocumentsAreRefused() {
        let holders = (0..<10_000).map { "\"machine-\($0)-0123456789abcdef\"" }.joined(separator: ",")
        let text = #"{"semaphore":0,"max":10000,"holders":["# + holders + "]}"
        do {
            _ = try SemaphoreDocument(parsing: text)
            Issue.record("parsed a \(text.utf8.count)-byte document")
        } catch let error as LocksmithError {
            #expect(error.kind == .badMessage)
            #expect(error.message.contains("bytes, more than"))
            #expect(error.message.contains("...")) // the excerpt is short
            #expect(error.message.utf8.count < 300)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func manyHoldersWithinTheLimitParse() throws {
        let holders = (0..<2000).map { "\"m\($0)\"" }.joined(separator: ",")
        let s = try SemaphoreDocument(parsing: #"{"semaphore":0,"max":2000,"holders":["# + holders + "]}")
        #expect(s.holders.count == 2000)
    }

    @Test(arguments: ["", String(repeating: "x", count: 256), "a\nb", "tab\there", "del\u{7f}"])
    func badHolderIdsAreInvalidArguments(id: String) {
        var s = SemaphoreDocument()
        #expect(throws: LocksmithError.self) { try s.lock(id) }
        #expect(throws: LocksmithError.self) { try s.unlock(id) }
        #expect(s.json == #"{"semaphore":1,"max":1,"holders":null}"#)
    }
}
