import Testing
@testable import LocksmithCore

@Suite struct GroupKeyTests {
    @Test func defaultGroup() throws {
        #expect(try GroupKey.key(group: nil) == "coreos.com/updateengine/rebootlock/semaphore")
        #expect(try GroupKey.key(group: "") == "coreos.com/updateengine/rebootlock/semaphore")
    }

    @Test(arguments: [
        ("prod/database", "prod%2Fdatabase"), ("a b/c", "a+b%2Fc"), ("lb", "lb"), ("A-Z_a.z~0", "A-Z_a.z~0"),
        ("100%", "100%25"), ("x+y", "x%2By"), ("é", "%C3%A9"), ("?&=#", "%3F%26%3D%23"),
    ])
    func queryEscapeAsGo(group: String, escaped: String) throws {
        #expect(URLEscape.query(group) == escaped)
        #expect(try GroupKey.key(group: group) == "coreos.com/updateengine/rebootlock/groups/\(escaped)/semaphore")
        #expect(GroupKey.group(ofKey: "/coreos.com/updateengine/rebootlock/groups/\(escaped)/semaphore") == group)
    }

    @Test func groupOfKey() {
        #expect(GroupKey.group(ofKey: "coreos.com/updateengine/rebootlock/semaphore") == "")
        #expect(GroupKey.group(ofKey: "coreos.com/updateengine/rebootlock/groups//semaphore") == nil)
        #expect(GroupKey.group(ofKey: "coreos.com/other") == nil)
        #expect(GroupKey.group(ofKey: "coreos.com/updateengine/rebootlock/groups/%zz/semaphore") == nil)
    }

    @Test func overlongGroupIsRefused() {
        #expect(throws: LocksmithError.self) { try GroupKey.key(group: String(repeating: "g", count: 256)) }
    }
}

@Suite struct BackoffTests {
    @Test func doublesFromFiveSecondsToFiveMinutes() {
        #expect((0...8).map { Backoff.delay(attempt: $0) } == [5, 10, 20, 40, 80, 160, 300, 300, 300])
    }

    @Test func neverNegativeNorOverflowing() {
        for attempt in [-1, -1000, Int.min, 62, 63, 64, 1000, Int.max] {
            let d = Backoff.delay(attempt: attempt)
            #expect(d >= 5 && d <= 300)
        }
    }
}
