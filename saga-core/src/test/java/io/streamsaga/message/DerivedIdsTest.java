package io.streamsaga.message;

import io.streamsaga.ConfigurationException;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DerivedIdsTest {

    @Test
    void differentListsOfPartsNeverShareAnIdWhereverTheirSlashesAndBackslashesFall() {
        List<String[]> lists = List.of(
                new String[]{"a/b", "c"}, new String[]{"a", "b/c"}, new String[]{"a/b/c"}, new String[]{"a", "b", "c"},
                new String[]{"a\\", "b"}, new String[]{"a\\/b"}, new String[]{"a", "\\b"}, new String[]{"a\\\\", "b"},
                new String[]{"", "a"}, new String[]{"a", ""}, new String[]{"/a"}, new String[]{"a/"}, new String[]{""});
        Set<String> ids = new HashSet<>();
        for (String[] parts : lists) {
            ids.add(DerivedIds.uuidOf(parts));
        }
        assertEquals(lists.size(), ids.size());
    }

    @Test
    void noPartsOrANullPartIsRefusedRatherThanNamedAsOneEmptyPart() {
        // no parts joined and one empty part joined are both the empty name: two lists of parts, one id
        ConfigurationException none = assertThrows(ConfigurationException.class, DerivedIds::uuidOf);
        assertTrue(none.getMessage().contains("at least one part"), none.getMessage());
        ConfigurationException nullPart = assertThrows(ConfigurationException.class, () -> DerivedIds.uuidOf("a", null));
        assertTrue(nullPart.getMessage().contains("part 1"), nullPart.getMessage());
        assertEquals(UUID.nameUUIDFromBytes(new byte[0]).toString(), DerivedIds.uuidOf(""));
    }

    @Test
    void partsWithoutASlashOrABackslashGiveTheIdOfTheirPlainJoinAsBefore() {
        assertEquals(UUID.nameUUIDFromBytes("m-1/seq.9/3".getBytes(StandardCharsets.UTF_8)).toString(),
                DerivedIds.uuidOf("m-1", "seq.9", "3"));
    }

    @Test
    void twoPartsAreJoinedAsAnyOtherNumberOfPartsAre() {
        assertEquals("payments/m-1", DerivedIds.joined("payments", "m-1"));
        assertEquals("billing\\/eu/7", DerivedIds.joined("billing/eu", "7"));
        assertEquals("billing/eu\\/7", DerivedIds.joined("billing", "eu/7"));
        assertEquals("a\\\\/b", DerivedIds.joined("a\\", "b"));
        assertEquals("a/b/c", DerivedIds.joined("a", "b", "c"));
    }
}
