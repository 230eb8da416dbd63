// Fuzzes SemaphoreDocument: parsing stored documents (JSONSyntax, then json-c), serializing, and
// the lock / unlock / set-max rules on whatever parsed.
//
// Invariants: a parsed document serializes to text that parses back to the same document and the
// same bytes; only valid UTF-8 objects without NUL parse; the String and byte entry points agree;
// every failure is a .badMessage LocksmithError naming the value; counts stay C ints; holders are
// unique; lock keeps holders sorted and moves one slot; unlock undoes it; set-max moves free
// slots by the difference; members we do not know are written back with their values unchanged
// (checked for long integers, which json-c clamps to 64 bits: no integer of 10 or more digits may
// appear in the output more often than in the input).
@testable import LocksmithCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSemaphore(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    let utf8 = String(validating: bytes, as: UTF8.self)

    let document: SemaphoreDocument
    do {
        document = try SemaphoreDocument(parsingUTF8: bytes)
    } catch let error as LocksmithError {
        invariant(error.kind == .badMessage, "parse failed with kind \(error.kind): \(error.message)")
        invariant(containsBytes(error.message, "(value: \""), "the message does not show the value: \(error.message)")
        if let utf8 {
            do {
                _ = try SemaphoreDocument(parsing: utf8)
                invariant(false, "the String entry point accepted what the byte one refused")
            } catch let other as LocksmithError {
                invariant(other == error, "the two entry points fail differently: \(other.message) / \(error.message)")
            } catch {
                invariant(false, "not a LocksmithError: \(error)")
            }
        }
        return 0
    } catch {
        invariant(false, "not a LocksmithError: \(error)")
        return 0
    }

    // What may parse at all.
    invariant(utf8 != nil, "a document that is not UTF-8 parsed")
    invariant(!bytes.contains(0), "a document with a NUL byte parsed")
    invariant(bytes.count <= SemaphoreDocument.maxDocumentBytes, "an oversized document parsed")
    invariant(bytes.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0a && $0 != 0x0d }) == UInt8(ascii: "{"),
              "something other than an object parsed")
    invariant(SemaphoreDocument.countRange.contains(document.available) && SemaphoreDocument.countRange.contains(document.max),
              "counts out of range: \(document.available) \(document.max)")
    invariant(Set(document.holders.map { Array($0.utf8) }).count == document.holders.count, "duplicate holders kept")
    invariant(!document.holders.contains { $0.utf8.contains(0) }, "a holder with NUL kept")

    // Both entry points read the same document.
    if let utf8, let again = try? SemaphoreDocument(parsing: utf8) {
        invariant(again.json == document.json, "String and byte entry points differ")
    } else {
        invariant(false, "the String entry point refused what the byte one read")
    }

    // Serialize -> parse -> serialize is a fixed point, and keeps every field.
    let json = document.json
    roundTrip(document, json, "parsed input")
    let before = longIntegers(Array(bytes)), after = longIntegers(Array(json.utf8))
    for (number, count) in after {
        invariant(count <= before[number, default: 0], "integer \(number) written \(count) times but read \(before[number, default: 0]) times: \(shown(json))")
    }

    // lock / unlock / set-max on the parsed document.
    operations(document)
    return 0
}

/// `json` (the serialization of `document`) is valid JSON and reads back as the same document.
private func roundTrip(_ document: SemaphoreDocument, _ json: String, _ what: String) {
    let ok = Array(json.utf8).withUnsafeBytes { (try? JSONSyntax.check($0)) != nil }
    invariant(ok, "\(what): serialization is not JSON: \(shown(json))")
    invariant(startsWithBytes(json, "{\"semaphore\":\(document.available),\"max\":\(document.max),\"holders\":"),
              "\(what): serialization does not start with our fields: \(shown(json))")
    let reread: SemaphoreDocument
    do {
        reread = try SemaphoreDocument(parsing: json)
    } catch {
        invariant(false, "\(what): serialization does not parse back: \(shown(json)): \(error)")
        return
    }
    invariant(reread.available == document.available && reread.max == document.max,
              "\(what): counts changed in the round trip: \(shown(json))")
    invariant(reread.holders.count == document.holders.count
                  && zip(reread.holders, document.holders).allSatisfy { Bytewise.equal($0, $1) },
              "\(what): holders changed in the round trip: \(shown(json))")
    invariant(reread.json == json, "\(what): not a fixed point: \(shown(json)) became \(shown(reread.json))")
}

private func isSorted(_ holders: [String]) -> Bool {
    zip(holders, holders.dropFirst()).allSatisfy { Bytewise.less($0, $1) }
}

private func operations(_ document: SemaphoreDocument) {
    // Unlock every holder that a caller could name: each frees one slot.
    var d = document
    var freed = 0
    for holder in document.holders where (try? SemaphoreDocument.validateHolder(holder)) != nil {
        do {
            try d.unlock(holder)
            freed += 1
        } catch {
            invariant(false, "unlock of listed holder \(shown(holder)) failed: \(error)")
        }
        invariant(!d.holds(holder), "\(shown(holder)) still holds after unlock")
        invariant(d.available == document.available + freed, "unlock did not free one slot")
    }
    roundTrip(d, d.json, "after unlocks")

    // Lock a new holder: exactly the rules of the original (busy before exists).
    for candidate in ["fuzz-holder", document.holders.first ?? "a"] {
        var l = document
        let before = l.available
        let held = l.holds(candidate)
        do {
            try l.lock(candidate)
            invariant(before > 0 && !held, "lock succeeded with \(before) free, held: \(held)")
            invariant(l.available == before - 1, "lock did not take one slot")
            invariant(l.holds(candidate) && isSorted(l.holders), "lock did not insert sorted: \(l.holders)")
            roundTrip(l, l.json, "after lock")
            try l.unlock(candidate)
            invariant(l.available == before, "unlock after lock did not give the slot back")
            roundTrip(l, l.json, "after lock and unlock")
        } catch let error as LocksmithError {
            switch error.kind {
            case .busy: invariant(before <= 0 && error.message == "semaphore is at \(before)", "busy wrongly: \(error.message)")
            case .exists: invariant(before > 0 && held, "exists wrongly")
            case .invalidArgument: invariant((try? SemaphoreDocument.validateHolder(candidate)) == nil, "valid holder refused")
            default: invariant(false, "lock failed with \(error.kind): \(error.message)")
            }
        } catch {
            invariant(false, "not a LocksmithError: \(error)")
        }
    }

    // set-max moves the free slots by the difference, within C int range.
    for newMax in [0, 1, document.max, Int(Int32.max), -1] {
        var s = document
        do {
            let old = try s.setMax(newMax)
            invariant(old == document.max && s.max == newMax, "set-max result wrong")
            invariant(s.available == document.available + newMax - document.max, "set-max moved free slots wrongly")
            roundTrip(s, s.json, "after set-max \(newMax)")
        } catch let error as LocksmithError {
            let wanted = document.available + newMax - document.max
            invariant(newMax < 0 || !SemaphoreDocument.countRange.contains(wanted),
                      "set-max \(newMax) refused: \(error.message)")
        } catch {
            invariant(false, "not a LocksmithError: \(error)")
        }
    }
}

/// Integer tokens of 10 digits or more outside strings, counted by their text.
private func longIntegers(_ b: [UInt8]) -> [String: Int] {
    var counts: [String: Int] = [:]
    var i = 0
    while i < b.count {
        let c = b[i]
        if c == UInt8(ascii: "\"") {
            i += 1
            while i < b.count, b[i] != UInt8(ascii: "\"") { i += b[i] == UInt8(ascii: "\\") ? 2 : 1 }
            i += 1
        } else if c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39) {
            let start = i
            i += 1
            while i < b.count, (b[i] >= 0x30 && b[i] <= 0x39) || b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e")
                || b[i] == UInt8(ascii: "E") || b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            let token = b[start..<i]
            if !token.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
               token.filter({ $0 >= 0x30 && $0 <= 0x39 }).count >= 10 {
                counts[String(decoding: token, as: UTF8.self), default: 0] += 1
            }
        } else {
            i += 1
        }
    }
    return counts
}
