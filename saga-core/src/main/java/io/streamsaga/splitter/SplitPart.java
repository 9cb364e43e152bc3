package io.streamsaga.splitter;

import io.streamsaga.bus.TopicPattern;
import io.streamsaga.ConfigurationException;

/**
 * One part of a split: the event and where it goes. Immutable.
 *
 * @param topic the topic of the part ({@code order-item-created})
 * @param key   the partitioning key; use the whole's key (the order id) to keep parts in order
 * @param event the event object, of a type registered in the bus's type registry
 */
public record SplitPart(String topic, String key, Object event) {
    public SplitPart {
        TopicPattern.requireTopicName(topic);
        ConfigurationException.require(event != null, "split part event must not be null (topic '%s')", topic);
    }
}
