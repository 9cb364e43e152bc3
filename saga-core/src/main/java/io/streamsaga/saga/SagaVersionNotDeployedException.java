package io.streamsaga.saga;

import java.util.List;
import java.util.OptionalInt;

/**
 * {@code start} refused a saga of a definition version that another live node over the same store has not registered
 * (a rolling deploy under way): that node may take the saga's replies, and it would dead-letter them. Thrown by
 * {@code start} before anything is stored, with saga ownership and {@link SagaOrchestrator.VersionGuard#FALL_BACK}
 * (the default) when no version can be fallen back to, or {@link SagaOrchestrator.VersionGuard#REFUSE}. Retriable: the
 * same start succeeds once every live node has the version (upgraded, or gone beyond its lease). Immutable.
 */
public class SagaVersionNotDeployedException extends SagaException {
    private static final long serialVersionUID = 1L;
    private final String sagaName;
    private final int version;
    private final List<String> nodes;
    private final Integer newestEverywhere;

    /**
     * @param sagaName         the definition's name
     * @param version          the version refused
     * @param nodes            the live nodes that have not registered it, by id
     * @param newestEverywhere the newest version of the saga registered here and on every live node, or null for none
     * @param why              why it was not fallen back to, or null
     */
    public SagaVersionNotDeployedException(String sagaName, int version, List<String> nodes, Integer newestEverywhere,
                                           String why) {
        super(null, null, "saga " + quote(sagaName) + " version " + version + " is not started: live node(s) "
                + nodes + " over the same store have not registered it and may take its replies, which they would"
                + " dead-letter; register it on every node first (docs/sagas.md, \"Rolling deploys\")"
                + (newestEverywhere == null ? "; no version of it is registered here and on every live node"
                : "; version " + newestEverywhere + " is registered here and on every live node")
                + (why == null ? "" : " (" + why + ")"), null, true);
        this.sagaName = sagaName;
        this.version = version;
        this.nodes = List.copyOf(nodes);
        this.newestEverywhere = newestEverywhere;
    }

    /** The name of the saga refused. */
    public String sagaName() {
        return sagaName;
    }

    /** The definition version refused. */
    public int version() {
        return version;
    }

    /** The live nodes that have not registered that version, by id, sorted. */
    public List<String> nodes() {
        return nodes;
    }

    /** The newest version of the saga registered here and on every live node, if any: one to start instead. */
    public OptionalInt newestVersionOnEveryNode() {
        return newestEverywhere == null ? OptionalInt.empty() : OptionalInt.of(newestEverywhere);
    }
}
