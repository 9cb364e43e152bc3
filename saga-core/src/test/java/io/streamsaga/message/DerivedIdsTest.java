package io.streamsaga.message;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
    void partsWithoutASlashOrABackslashGiveTheIdOfTheirPlainJoinAsBefore() {
        assertEquals(UUID.nameUUIDFromBytes("m-1/seq.9/3".getBytes(StandardCharsets.UTF_8)).toString(),
                DerivedIds.uuidOf("m-1", "seq.9", "3"));
    }
}
