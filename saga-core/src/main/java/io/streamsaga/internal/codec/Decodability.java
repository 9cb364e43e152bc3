package io.streamsaga.internal.codec;

import io.streamsaga.codec.EventCodec;
import io.streamsaga.codec.UnknownEventTypeException;

/**
 * Why a codec cannot decode to a class, for the refusals of what would fail every message it is given (a bus's
 * handler, a saga's reply): said once, so that each refusal names the call that registers the class alike. Stateless.
 */
public final class Decodability {
    private Decodability() {
    }

    /**
     * Null when {@code codec} decodes to {@code target} ({@link EventCodec#canDecodeTo}); else why not: that the class
     * is not registered, with the call that registers it, or that the codec does not decode to a class it registered.
     */
    public static String whyNot(EventCodec codec, Class<?> target) {
        if (codec.canDecodeTo(target)) {
            return null;
        }
        try {
            return target.getName() + " is registered as " + codec.types().idOf(target) + ", which the codec does not decode to";
        } catch (UnknownEventTypeException e) {
            return e.getMessage();
        }
    }
}
