package io.streamsaga.saga.internal;

import io.streamsaga.saga.SagaDefinition;
import io.streamsaga.saga.SagaStep;
import io.streamsaga.saga.StepState;
import io.streamsaga.saga.StepStatus;

import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The step states every run of one definition passes through on its common path (pending; first attempt
 * running or succeeded; first compensation running or done), built once per definition and shared by its
 * runs. {@link StepState} is immutable, so sharing an equal instance changes nothing but the allocation.
 * Immutable and thread-safe.
 */
final class StepStates {
    final List<StepState> pending;
    /** Whether the definition has remote steps or compensations (its runs need the reply subscription). */
    final boolean usesBus;
    private final StepState[] running;
    private final StepState[] succeeded;
    private final StepState[] compensating;
    private final StepState[] compensated;
    private final StepState[] failed;
    /** Index i: the running list of step i with step i failed at its first attempt. */
    private final List<List<StepState>> failedLists;
    /**
     * The compensation path after a first-attempt failure, for sequential definitions of up to
     * {@link #MAX_SHARED_COMPENSATION_STEPS} steps: a shared list to the shared list with the next step
     * compensating (or, from that one, compensated). Keyed by identity; built once, read-only afterwards.
     */
    private final Map<List<StepState>, List<StepState>> nextCompensating = new IdentityHashMap<>();
    private final Map<List<StepState>, List<StepState>> nextCompensated = new IdentityHashMap<>();
    private static final int MAX_SHARED_COMPENSATION_STEPS = 16;
    /** Index i: steps before i succeeded at once, step i running its first attempt, the rest pending. */
    private final List<List<StepState>> runningLists;
    /** Index i: steps up to i succeeded at once, the rest pending. */
    private final List<List<StepState>> succeededLists;

    /** The definition's steps, in order (members of a parallel group are consecutive). */
    private final SagaStep<?>[] steps;
    /**
     * Group g holds the steps from {@code groupStart[g]} up to (excluding) {@code groupStart[g + 1]}; one entry
     * per group and a last one for the end. The engine's hot loops index these arrays instead of nested lists.
     */
    final int[] groupStart;
    /**
     * Whether runs may drive this definition straight through (see {@code SagaRun.forwardStraight}): every
     * group one local synchronous step, at most {@link #MAX_SHARED_COMPENSATION_STEPS} steps.
     */
    final boolean straight;
    /** [k][j]: after step k failed at its first attempt, step j compensating (its first attempt); null without a compensation. */
    private final List<StepState>[][] compensatingAfter;
    /** [k][j]: as {@link #compensatingAfter}, with step j compensated. */
    private final List<StepState>[][] compensatedAfter;

    StepStates(SagaDefinition<?> definition) {
        int n = definition.steps().size();
        steps = definition.steps().toArray(new SagaStep<?>[0]);
        groupStart = new int[definition.groups().size() + 1];
        for (int g = 0; g < definition.groups().size(); g++) {
            groupStart[g + 1] = groupStart[g] + definition.groups().get(g).size();
        }
        StepState[] initial = new StepState[n];
        running = new StepState[n];
        succeeded = new StepState[n];
        compensating = new StepState[n];
        compensated = new StepState[n];
        failed = new StepState[n];
        for (int i = 0; i < n; i++) {
            String name = definition.steps().get(i).name();
            initial[i] = StepState.pending(name);
            running[i] = new StepState(name, StepStatus.RUNNING, 1, 0, null);
            succeeded[i] = new StepState(name, StepStatus.SUCCEEDED, 1, 0, null);
            compensating[i] = new StepState(name, StepStatus.COMPENSATING, 1, 1, null);
            compensated[i] = new StepState(name, StepStatus.COMPENSATED, 1, 1, null);
            failed[i] = new StepState(name, StepStatus.FAILED, 1, 0, null);
        }
        pending = List.of(initial);
        usesBus = definition.steps().stream().anyMatch(SagaStep::usesBus);
        List<StepState>[] runningAt = forwardLists(initial, running);
        List<StepState>[] succeededAt = forwardLists(initial, succeeded);
        runningLists = List.of(runningAt);
        succeededLists = List.of(succeededAt);
        @SuppressWarnings("unchecked")
        List<StepState>[] failedAt = new List[n];
        for (int k = 0; k < n; k++) {
            failedAt[k] = copyReplaced(runningAt[k], k, failed[k]);
        }
        failedLists = List.of(failedAt);
        boolean sharedCompensation = n <= MAX_SHARED_COMPENSATION_STEPS
                && definition.groups().stream().allMatch(group -> group.size() == 1);
        straight = sharedCompensation
                && definition.steps().stream().allMatch(step -> step.action() != null && !step.isRemote()
                        && (step.compensation() != null || !step.hasCompensation()));
        @SuppressWarnings("unchecked")
        List<StepState>[][] compensatingAt = new List[n][n];
        @SuppressWarnings("unchecked")
        List<StepState>[][] compensatedAt = new List[n][n];
        compensatingAfter = compensatingAt;
        compensatedAfter = compensatedAt;
        if (sharedCompensation) {
            for (int k = 0; k < n; k++) {
                // The engine compensates the succeeded steps before k, last first (see SagaRun.advanceCompensation).
                List<StepState> list = failedAt[k];
                for (int j = k - 1; j >= 0; j--) {
                    if (!definition.steps().get(j).hasCompensation()) {
                        continue;
                    }
                    List<StepState> compensatingList = copyReplaced(list, j, compensating[j]);
                    List<StepState> compensatedList = copyReplaced(compensatingList, j, compensated[j]);
                    nextCompensating.put(list, compensatingList);
                    nextCompensated.put(compensatingList, compensatedList);
                    compensatingAt[k][j] = compensatingList;
                    compensatedAt[k][j] = compensatedList;
                    list = compensatedList;
                }
            }
        }
    }

    /** Steps before i succeeded at their first attempt, the rest pending: where step i's first attempt starts. */
    List<StepState> beforeStart(int i) {
        return i == 0 ? pending : succeededLists.get(i - 1);
    }

    /** Steps before i succeeded at their first attempt, step i running its first, the rest pending. */
    List<StepState> runningList(int i) {
        return runningLists.get(i);
    }

    /** Steps up to i succeeded at their first attempt, the rest pending. */
    List<StepState> succeededList(int i) {
        return succeededLists.get(i);
    }

    /** Steps before k succeeded at their first attempt, step k failed at its first, the rest pending. */
    List<StepState> failedList(int k) {
        return failedLists.get(k);
    }

    /** After step k failed at once: step j compensating, the steps between them compensated (straight definitions). */
    List<StepState> compensatingList(int k, int j) {
        return compensatingAfter[k][j];
    }

    /** As {@link #compensatingList} with step j compensated. */
    List<StepState> compensatedList(int k, int j) {
        return compensatedAfter[k][j];
    }

    /** The steps of the definition these states were built for. */
    @SuppressWarnings("unchecked")
    <D> SagaStep<D>[] steps() {
        return (SagaStep<D>[]) steps;
    }

    @SuppressWarnings("unchecked")
    private List<StepState>[] forwardLists(StepState[] initial, StepState[] at) {
        List<StepState>[] lists = new List[initial.length];
        for (int i = 0; i < initial.length; i++) {
            StepState[] states = initial.clone();
            System.arraycopy(succeeded, 0, states, 0, i);
            states[i] = at[i];
            lists[i] = List.of(states);
        }
        return lists;
    }

    /**
     * {@code steps} with element {@code index} replaced by {@code state}: a shared list when the result is a
     * state of the common forward path (the states compared by identity: only shared ones match), else a
     * new one.
     */
    List<StepState> replaced(List<StepState> steps, int index, StepState state) {
        // Identity first: a run on the common path holds the shared lists themselves, so no scan is needed.
        if (state == running[index]) {
            if (steps == (index == 0 ? pending : succeededLists.get(index - 1)) || isForwardPrefix(steps, index)) {
                return runningLists.get(index);
            }
        } else if (state == succeeded[index] && (steps == runningLists.get(index)
                || steps.get(index) == running[index] && isForwardPrefix(steps, index))) {
            return succeededLists.get(index);
        } else if (state == failed[index] && steps == runningLists.get(index)) {
            return failedLists.get(index);
        } else if (state == compensating[index] || state == compensated[index]) {
            List<StepState> next = (state == compensating[index] ? nextCompensating : nextCompensated).get(steps);
            if (next != null && next.get(index) == state) {
                return next;
            }
        }
        return copyReplaced(steps, index, state);
    }

    /** Steps before {@code index} are the shared succeeded states and steps after it the shared pending ones. */
    private boolean isForwardPrefix(List<StepState> steps, int index) {
        int n = steps.size();
        if (n != running.length) {
            return false;
        }
        for (int j = 0; j < n; j++) {
            if (j < index ? steps.get(j) != succeeded[j] : j > index && steps.get(j) != pending.get(j)) {
                return false;
            }
        }
        return true;
    }

    /** The list with one element replaced; small sizes use List.of's fixed arities (one array, no second copy). */
    static List<StepState> copyReplaced(List<StepState> steps, int index, StepState state) {
        int n = steps.size();
        if (n <= 4) {
            StepState a = index == 0 ? state : steps.get(0);
            StepState b = n < 2 ? null : index == 1 ? state : steps.get(1);
            StepState c = n < 3 ? null : index == 2 ? state : steps.get(2);
            StepState d = n < 4 ? null : index == 3 ? state : steps.get(3);
            return switch (n) {
                case 1 -> List.of(a);
                case 2 -> List.of(a, b);
                case 3 -> List.of(a, b, c);
                default -> List.of(a, b, c, d);
            };
        }
        StepState[] copy = steps.toArray(new StepState[0]);
        copy[index] = state;
        return List.of(copy);
    }

    /** {@code state.nextAttempt(RUNNING, null)}, shared for a first attempt. */
    StepState nextAttemptRunning(int i, StepState state) {
        return isFresh(state, StepStatus.PENDING, 0, 0) ? running[i] : state.nextAttempt(StepStatus.RUNNING, null);
    }

    /** {@code state.with(SUCCEEDED)}, shared after a first attempt. */
    StepState succeeded(int i, StepState state) {
        return isFresh(state, StepStatus.RUNNING, 1, 0) ? succeeded[i] : state.with(StepStatus.SUCCEEDED);
    }

    /** {@code state.with(FAILED)}, shared after a failed first attempt. */
    StepState failed(int i, StepState state) {
        return isFresh(state, StepStatus.RUNNING, 1, 0) ? failed[i] : state.with(StepStatus.FAILED);
    }

    /** {@code state.nextCompensationAttempt()}, shared for the first compensation of a step that succeeded at once. */
    StepState nextCompensationAttempt(int i, StepState state) {
        return isFresh(state, StepStatus.SUCCEEDED, 1, 0) ? compensating[i] : state.nextCompensationAttempt();
    }

    /** {@code state.with(COMPENSATED)}, shared after a first compensation. */
    StepState compensated(int i, StepState state) {
        return isFresh(state, StepStatus.COMPENSATING, 1, 1) ? compensated[i] : state.with(StepStatus.COMPENSATED);
    }

    private static boolean isFresh(StepState state, StepStatus status, int attempts, int compensationAttempts) {
        return state.status() == status && state.attempts() == attempts
                && state.compensationAttempts() == compensationAttempts && state.dueAt() == null;
    }
}
