package io.streamsaga.jdbc.saga;

import javax.sql.DataSource;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A data source recording each statement prepared on its connections and the parameters set on it with
 * {@code setObject}, so that a plan test explains exactly the statement a store sent. Not thread-safe (one test).
 */
final class StatementCapture {
    private final List<String> statements = new ArrayList<>();
    private final List<Map<Integer, Object>> parameters = new ArrayList<>();
    private final DataSource dataSource;

    StatementCapture(DataSource target) {
        this.dataSource = proxy(DataSource.class, target, (method, args, result) -> {
            if (result instanceof Connection connection) {
                return proxy(Connection.class, connection, (m, a, r) -> {
                    if (m.equals("prepareStatement") && r instanceof PreparedStatement ps) {
                        statements.add((String) a[0]);
                        Map<Integer, Object> set = new TreeMap<>();
                        parameters.add(set);
                        return proxy(PreparedStatement.class, ps, (pm, pa, pr) -> {
                            if (pm.equals("setObject")) {
                                set.put((Integer) pa[0], pa[1]);
                            }
                            return pr;
                        });
                    }
                    return r;
                });
            }
            return result;
        });
    }

    /** The recording data source. */
    DataSource dataSource() {
        return dataSource;
    }

    /** The statements prepared since the last {@link #clear()}. */
    List<String> statements() {
        return statements;
    }

    void clear() {
        statements.clear();
        parameters.clear();
    }

    /** The plan {@code explain} (such as {@code "EXPLAIN "}) gives for the statement prepared {@code index}-th. */
    String explain(DataSource target, String explain, int index) throws Exception {
        try (Connection c = target.getConnection();
             PreparedStatement ps = c.prepareStatement(explain + statements.get(index))) {
            for (Map.Entry<Integer, Object> p : parameters.get(index).entrySet()) {
                ps.setObject(p.getKey(), p.getValue());
            }
            StringBuilder plan = new StringBuilder();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    plan.append(rs.getString(1)).append('\n');
                }
            }
            return plan.toString();
        }
    }

    private interface After {
        Object apply(String method, Object[] args, Object result);
    }

    private static <T> T proxy(Class<T> type, T target, After after) {
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (p, method, args) -> {
            Object result;
            try {
                result = method.invoke(target, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
            return after.apply(method.getName(), args, result);
        }));
    }
}
